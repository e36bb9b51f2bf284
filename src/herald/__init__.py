"""Herald: a self-hosted notification platform (消息通知系统)."""

__version__ = "0.1.0"
