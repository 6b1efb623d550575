"""The demo: a talking portrait built from installed packages, taken through preprocess, train and render."""
