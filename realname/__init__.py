"""realname."""
