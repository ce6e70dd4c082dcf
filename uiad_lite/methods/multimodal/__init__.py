"""RGB + 3D detectors (survey Sec. 5): early, middle, late and hybrid fusion of image and geometry
features."""
