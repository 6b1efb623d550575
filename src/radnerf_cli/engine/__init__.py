"""The engine: training, inference (TalkingHead), rendering to video, evaluation and export."""
