"""A scripted OpenAI-compatible chat-completions server, run as a real process in tests."""
