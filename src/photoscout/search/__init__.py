"""Search: text -> image, image -> image and OCR text over one embedding model version, with filters."""
