"""`radnerf serve`: a local web page to browse subjects, render audio and talk to a subject live."""
