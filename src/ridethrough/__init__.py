"""ridethrough: an AI gateway that keeps answering when the AI provider goes down."""

__version__ = "0.1.0"
