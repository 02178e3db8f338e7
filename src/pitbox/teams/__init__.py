"""Teams, their members, and driver profiles."""
