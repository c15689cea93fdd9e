"""updown: self-hosted secure file upload and download in one Python service."""

__version__ = "0.1.0"
