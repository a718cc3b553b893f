"""The photo library: finding files, reading them (hash, EXIF, thumbnails) and keeping the photos table in step."""
