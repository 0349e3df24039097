"""The model in the serving process: preprocessing, ONNX Runtime, the model worker, model files
and cards, offline evaluation. No torch."""
