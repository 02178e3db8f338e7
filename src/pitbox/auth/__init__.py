"""Identity and access: who is calling (JWT, API key) and what they may read or write."""
