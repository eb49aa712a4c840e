"""fasttrack-gitops: Backend.AI FastTrack 2 pipelines that live in git."""

__version__ = "0.1.0"
