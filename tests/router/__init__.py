"""Router tests."""
