"""userpool."""
