"""Export a trained run as a Hugging Face model directory (`scaling export`)."""
