"""Versioned Hub datasets: a folder's versions, one commit and tag each, and the card's history."""
