"""Driver coaching: the built-in lap analyst, the AI agent and GradientAI, feedback stored and pushed live."""
