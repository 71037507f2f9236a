"""The per-frame path: decode, estimator (ONNX Runtime), pre/post-processing, scale, depth image,
point cloud, output messages, error types. Imports neither torch nor rclpy."""
