"""``ccmct view``: a zoomable whole-slide viewer with ground truth, detections and the 10-HPF hotspot.

A static site (index page, one OpenSeadragon page per slide, overlays as scripts, Deep Zoom JPEG tiles)
that opens from the file system, or the same pages served with tiles rendered on demand
(:mod:`ccmct.viewer.server`). See docs/viewer.md.
"""

from ccmct.viewer.demo import write_demo_site
from ccmct.viewer.site import ViewerPlan, build_site

__all__ = ["ViewerPlan", "build_site", "write_demo_site"]
