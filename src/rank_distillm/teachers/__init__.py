"""Teacher runs: the demo's simulated teacher and listwise LLM generation."""
