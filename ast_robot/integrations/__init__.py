"""Interop with optional third-party packages (imported lazily)."""
