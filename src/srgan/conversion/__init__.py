"""Model conversion between weight formats (`srgan convert`): PyTorch `.pth`/`.pt`/
`.ckpt`, `.safetensors`, ONNX and ncnn `.param`/`.bin`, told from the extensions, each
conversion validated by running the source and the result with their own runtimes."""
