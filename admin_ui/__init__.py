"""admin_ui."""
