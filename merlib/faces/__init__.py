"""Face detection, landmarks and alignment (dlib HOG detector + 68-point model)."""
