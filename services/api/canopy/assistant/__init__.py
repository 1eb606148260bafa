"""Assistants: turn a user's prompt into reasoning, text and tree changes."""
