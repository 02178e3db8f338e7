"""Video frames from the driver's screen: checked, stored under DATA_DIR, indexed in PostgreSQL, published live."""

from pitbox.video.frame_store import FrameStore, LocalFrameStore
from pitbox.video.service import VideoService

__all__ = ["FrameStore", "LocalFrameStore", "VideoService"]
