"""A bidirectional recurrent video super-resolution network (the BasicVSR family).

Chan et al. 2021 ("BasicVSR: The Search for Essential Components in Video Super-Resolution
and Beyond") showed that two recurrent passes over a clip, one backward and one forward,
whose hidden states are fused per frame and upsampled, make a strong and simple VSR model,
provided the propagated features are aligned to each frame with optical flow.

``alignment`` chooses how the hidden state carried from the neighbouring frame is brought
into the current frame's coordinates before it is fused with the frame's features:

- ``"none"``: not at all (the first version of this network; motion is left to the
  receptive field of the trunks). Its checkpoints keep loading and running unchanged.
- ``"learned"``: a small SPyNet-like flow pyramid (``archs.flow.PyramidFlow``, keys
  ``align.*``) trained jointly, from zero flow, on the low-resolution frames.
- ``"dis"``: a flow the caller computes on the low-resolution frames (OpenCV's DIS in
  ``srgan.imaging.optical_flow``) and attaches as ``flow_estimator``; the state dict
  records the choice in a one-element ``opencv_flow`` buffer.

In both aligned variants the hidden state is warped with ``grid_sample`` (bilinear,
border padding) by the flow between the two LR frames. With ``warp_error`` each recurrent
cell is also fed how wrong that flow is, per pixel: the mean absolute difference between
the current LR frame and the previous one warped by the same flow (zero for the first frame
of a pass, whose state is its own). Where the flow fails (occlusions, motion out of the
frame, a flow estimator's mistakes) the carried features are misplaced, and the map lets the
cell learn to rely on the current frame there. It adds one input channel to each cell's
merge convolution.

Initial hidden states. Unaligned, both passes start from a hidden state computed from the
features of the clip's centre frame (index ``T // 2``), so the first frame of the backward
pass (``T - 1``) and of the forward pass (``0``) already see the middle of the window.
Aligned, the centre frame's features would land unaligned on the end frames, so each pass
starts from its own first frame's features (``init_backward(features[T - 1])``,
``init_forward(features[0])``): same keys, same shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from srgan.archs.flow import PyramidFlow, flow_warp
from srgan.archs.spec import ArchSpec, Hyperparameters, StateDict, dims, indices, upsample_factors

__all__ = [
    "ALIGNMENTS",
    "SPEC",
    "SUPPORTED_SCALES",
    "BidirectionalRecurrentVSR",
    "ClipFlows",
    "FlowEstimator",
    "VSROutput",
    "build_vsr",
    "vsr_guess",
    "vsr_hyperparameters",
]

#: How propagated features are aligned (see the module doc).
ALIGNMENTS: tuple[str, ...] = ("none", "learned", "dis")
_OPENCV_FLOW_CODES = {"dis": 1}

FlowEstimator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(reference, neighbour) [B, C, h, w] in [0, 1] -> flow [B, 2, h, w] (`archs.flow`)."""

#: Upscaling factors the network can be built for, with their pixel-shuffle factors per stage.
_STAGES: dict[int, tuple[int, ...]] = {2: (2,), 3: (3,), 4: (2, 2)}
SUPPORTED_SCALES: tuple[int, ...] = tuple(sorted(_STAGES))

#: Residual blocks after the first convolution of the per-frame feature extractor.
EXTRACTION_BLOCKS = 2
_NEGATIVE_SLOPE = 0.1


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=_NEGATIVE_SLOPE, inplace=True)


class ResidualBlock(nn.Module):
    """conv3x3-LeakyReLU-conv3x3 with an identity skip (no normalisation)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, 1, 1)
        self.act = _lrelu()
        self.conv2 = nn.Conv2d(num_features, num_features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class PropagationTrunk(nn.Module):
    """One direction's recurrent cell: [frame features, hidden state] -> new hidden state;
    with ``cue_channels``, also fed a map of how well the hidden state is aligned."""

    def __init__(self, num_features: int, num_blocks: int, cue_channels: int = 0) -> None:
        super().__init__()
        self.merge = nn.Conv2d(2 * num_features + cue_channels, num_features, 3, 1, 1)
        self.act = _lrelu()
        self.blocks = nn.Sequential(*(ResidualBlock(num_features) for _ in range(num_blocks)))

    def forward(
        self, features: torch.Tensor, hidden: torch.Tensor, cue: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = (features, hidden) if cue is None else (features, hidden, cue)
        merged = self.act(self.merge(torch.cat(parts, dim=1)))
        out: torch.Tensor = self.blocks(merged)
        return out


class UpsampleStage(nn.Module):
    """conv3x3 (C -> r*r*C), PixelShuffle(r), LeakyReLU."""

    def __init__(self, num_features: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_features, num_features * factor * factor, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(factor)
        self.act = _lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


@dataclass(frozen=True)
class ClipFlows:
    """The LR flows a clip was aligned with: ``flows[i] = estimate(references[i],
    neighbours[i])``, all ``[B, ...]`` with B = N * 2 * (T - 1) (backward pairs
    ``(t, t + 1)`` first, then forward pairs ``(t + 1, t)``)."""

    references: torch.Tensor
    neighbours: torch.Tensor
    flows: torch.Tensor


@dataclass(frozen=True)
class VSROutput:
    frames: torch.Tensor  # [N, T, C, H, W]
    flows: ClipFlows | None  # None unaligned, or for a one-frame clip


class BidirectionalRecurrentVSR(nn.Module):
    """Maps a clip ``[N, T, C, h, w]`` in [0, 1] to ``[N, T, C, h*scale, w*scale]``.

    Per frame: feature extraction (conv + LeakyReLU + two residual blocks). Then a backward
    pass ``t = T-1 .. 0`` and a forward pass ``t = 0 .. T-1``, each a residual trunk fed
    ``[features_t, hidden]``, the hidden state coming from the previous frame of the pass
    (warped to frame t by the LR flow when ``alignment`` is not ``"none"``); the initial
    states are described in the module doc. For each frame the two hidden states are fused
    by a 1x1 conv, upsampled by pixel shuffle and a final conv, and added to the bilinearly
    upsampled input frame (``F.interpolate(mode="bilinear", align_corners=False)``: cheap
    and differentiable). The output is not clamped. An ``[N, C, h, w]`` input is taken as
    a one-frame clip and gives ``[N, C, H, W]``, so the network also upscales single images.

    State-dict keys (``C`` = ``num_features``, ``k`` < 2 extraction blocks, ``i`` <
    ``num_blocks``, ``d`` in ``{backward, forward}``, ``j`` < number of upsampling stages;
    every conv has a bias of shape ``[out]``)::

        extract_conv.{weight,bias}                 [C, in_channels, 3, 3]
        extract_blocks.k.conv1.{weight,bias}       [C, C, 3, 3]
        extract_blocks.k.conv2.{weight,bias}       [C, C, 3, 3]
        init_backward.{weight,bias}                [C, C, 3, 3]   first frame -> hidden
        init_forward.{weight,bias}                 [C, C, 3, 3]
        d_trunk.merge.{weight,bias}                [C, 2C, 3, 3]  [features, hidden] -> C
                                                   [C, 2C + 1, 3, 3] with warp_error
        d_trunk.blocks.i.conv1.{weight,bias}       [C, C, 3, 3]
        d_trunk.blocks.i.conv2.{weight,bias}       [C, C, 3, 3]
        fusion.{weight,bias}                       [C, 2C, 1, 1]  [backward, forward] -> C
        upsample.j.conv.{weight,bias}              [r*r*C, C, 3, 3]  r = 2 (x2, x4) or 3 (x3)
        output_conv.{weight,bias}                  [out_channels, C, 3, 3]
        align.levels.l.*                           alignment "learned" (archs.flow.PyramidFlow)
        opencv_flow                                [1]  alignment "dis" (1 = DIS)

    Scale 2 and 3 use one upsampling stage, scale 4 two. ``in_channels`` must equal
    ``out_channels`` (the upsampled input is added channel for channel).
    :func:`vsr_hyperparameters` recovers the constructor arguments from such a dict.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 32,
        num_blocks: int = 4,
        scale: int = 3,
        alignment: str = "none",
        flow_levels: int = 3,
        flow_features: int = 16,
        warp_error: bool = False,
    ) -> None:
        super().__init__()
        if scale not in _STAGES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, not {scale!r}")
        if min(in_channels, out_channels, num_features) < 1 or num_blocks < 0:
            raise ValueError("channel counts must be positive and num_blocks non-negative")
        if in_channels != out_channels:
            raise ValueError("BidirectionalRecurrentVSR needs in_channels == out_channels")
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, not {alignment!r}")
        if warp_error and alignment == "none":
            raise ValueError("warp_error needs an alignment (a flow to measure)")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_features = num_features
        self.num_blocks = num_blocks
        self.scale = scale
        self.alignment = alignment
        self.warp_error = bool(warp_error)
        #: Computes the flows of alignment "dis" (set by whoever builds the network).
        self.flow_estimator: FlowEstimator | None = None

        self.extract_conv = nn.Conv2d(in_channels, num_features, 3, 1, 1)
        self.extract_act = _lrelu()
        self.extract_blocks = nn.Sequential(
            *(ResidualBlock(num_features) for _ in range(EXTRACTION_BLOCKS))
        )
        self.init_backward = nn.Conv2d(num_features, num_features, 3, 1, 1)
        self.init_forward = nn.Conv2d(num_features, num_features, 3, 1, 1)
        cues = 1 if self.warp_error else 0
        self.backward_trunk = PropagationTrunk(num_features, num_blocks, cues)
        self.forward_trunk = PropagationTrunk(num_features, num_blocks, cues)
        self.fusion = nn.Conv2d(2 * num_features, num_features, 1, 1, 0)
        self.fusion_act = _lrelu()
        self.upsample = nn.Sequential(*(UpsampleStage(num_features, r) for r in _STAGES[scale]))
        self.output_conv = nn.Conv2d(num_features, out_channels, 3, 1, 1)
        self.align: PyramidFlow | None = None
        if alignment == "learned":
            self.align = PyramidFlow(in_channels, flow_levels, flow_features)
        elif alignment in _OPENCV_FLOW_CODES:
            code = torch.tensor([float(_OPENCV_FLOW_CODES[alignment])])
            self.register_buffer("opencv_flow", code)

    def extract_features(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, T, C, h, w]`` -> per-frame features ``[N, T, F, h, w]``."""
        n, t, c, h, w = frames.shape
        flat = self.extract_act(self.extract_conv(frames.reshape(n * t, c, h, w)))
        features: torch.Tensor = self.extract_blocks(flat)
        return features.reshape(n, t, self.num_features, h, w)

    def initial_states(self, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial (backward, forward) hidden states from the centre frame's features."""
        backward = F.leaky_relu(self.init_backward(centre), _NEGATIVE_SLOPE)
        forward = F.leaky_relu(self.init_forward(centre), _NEGATIVE_SLOPE)
        return backward, forward

    def reconstruct(self, fused: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Fused LR features ``[B, F, h, w]`` + LR frame ``[B, C, h, w]`` -> HR frame."""
        residual = self.output_conv(self.upsample(fused))
        base = F.interpolate(frame, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return residual + base

    def clip_flows(self, frames: torch.Tensor) -> ClipFlows | None:
        """The flows between neighbouring LR frames that the passes warp with."""
        n, t = frames.shape[:2]
        if self.alignment == "none" or t < 2:
            return None
        earlier = frames[:, :-1].reshape(n * (t - 1), *frames.shape[2:])
        later = frames[:, 1:].reshape(n * (t - 1), *frames.shape[2:])
        references, neighbours = torch.cat((earlier, later)), torch.cat((later, earlier))
        if self.align is not None:
            flows = self.align(references, neighbours)
        elif self.flow_estimator is not None:
            with torch.no_grad():
                flows = self.flow_estimator(references, neighbours).to(frames.dtype)
        else:
            raise RuntimeError(
                f"alignment {self.alignment!r} needs a flow_estimator: build the network "
                "with srgan.zoo (or attach srgan.imaging.optical_flow.dis_flow)"
            )
        return ClipFlows(references, neighbours, flows)

    def forward(
        self, frames: torch.Tensor, detach_flows: bool = False, with_flows: bool = False
    ) -> torch.Tensor | VSROutput:
        """The upscaled frames; with ``with_flows``, the `VSROutput` of `propagate` (the
        keywords pass through DistributedDataParallel, which only wraps ``forward``)."""
        if frames.ndim == 4:  # an image is a one-frame clip
            return self.propagate(frames.unsqueeze(1)).frames.squeeze(1)
        output = self.propagate(frames, detach_flows)
        return output if with_flows else output.frames

    def propagate(self, frames: torch.Tensor, detach_flows: bool = False) -> VSROutput:
        """The upscaled clip and the flows used (for a flow loss); ``detach_flows`` keeps
        the super-resolution loss out of a learned flow (a warm-up)."""
        if frames.ndim != 5:
            raise ValueError(f"expected [N, T, C, h, w] frames, got shape {tuple(frames.shape)}")
        n, num_frames = frames.shape[:2]
        if num_frames < 1:
            raise ValueError("a clip needs at least one frame")
        features = self.extract_features(frames)
        flows = self.clip_flows(frames)
        backward_flows: list[torch.Tensor] = []  # [t]: frame t+1 -> frame t
        forward_flows: list[torch.Tensor] = []  # [t]: frame t -> frame t+1
        backward_cues: list[torch.Tensor] = []  # [t]: the warp error of backward_flows[t]
        forward_cues: list[torch.Tensor] = []
        if flows is not None:
            used = flows.flows.detach() if detach_flows else flows.flows
            backward_flows, forward_flows = _per_direction(used, n, num_frames)
            if self.warp_error:
                errors = warp_errors(flows.references, flows.neighbours, used)
                backward_cues, forward_cues = _per_direction(errors, n, num_frames)
        no_cue = (
            frames.new_zeros(n, 1, *frames.shape[-2:]) if self.warp_error else None
        )  # a pass's first frame: its state is its own

        if flows is None and self.alignment == "none":
            hidden_backward, hidden_forward = self.initial_states(features[:, num_frames // 2])
        else:
            hidden_backward, _ = self.initial_states(features[:, num_frames - 1])
            _, hidden_forward = self.initial_states(features[:, 0])

        backward_states: list[torch.Tensor] = []
        for t in range(num_frames - 1, -1, -1):
            cue = no_cue
            if backward_flows and t < num_frames - 1:
                hidden_backward = flow_warp(hidden_backward, backward_flows[t])
                cue = backward_cues[t] if backward_cues else no_cue
            hidden_backward = self.backward_trunk(features[:, t], hidden_backward, cue)
            backward_states.append(hidden_backward)
        backward_states.reverse()

        outputs: list[torch.Tensor] = []
        for t in range(num_frames):
            cue = no_cue
            if forward_flows and t > 0:
                hidden_forward = flow_warp(hidden_forward, forward_flows[t - 1])
                cue = forward_cues[t - 1] if forward_cues else no_cue
            hidden_forward = self.forward_trunk(features[:, t], hidden_forward, cue)
            both = torch.cat((backward_states[t], hidden_forward), dim=1)
            fused = self.fusion_act(self.fusion(both))
            outputs.append(self.reconstruct(fused, frames[:, t]))
        return VSROutput(torch.stack(outputs, dim=1), flows)


#: Scales the warp error (a mean absolute difference of [0, 1] frames, mostly under 0.05)
#: to about the range of the features it is concatenated with: Adam moves each weight by
#: about the learning rate per step, so an input 20 times too small takes 20 times as long
#: to matter.
WARP_ERROR_GAIN = 20.0


def warp_errors(
    references: torch.Tensor, neighbours: torch.Tensor, flows: torch.Tensor
) -> torch.Tensor:
    """``[B, 1, h, w]``: how far each neighbour warped by its flow is from its reference
    (the mean over channels of the absolute difference, times `WARP_ERROR_GAIN`)."""
    difference = references - flow_warp(neighbours, flows.to(neighbours.dtype))
    return WARP_ERROR_GAIN * difference.abs().mean(dim=1, keepdim=True)


def _per_direction(
    pairs: torch.Tensor, n: int, num_frames: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """`ClipFlows`-ordered ``[2 * n * (T - 1), ...]`` -> (backward, forward) per frame pair."""
    half = n * (num_frames - 1)

    def split(part: torch.Tensor) -> list[torch.Tensor]:
        return list(part.reshape(n, num_frames - 1, *part.shape[1:]).unbind(1))

    return split(pairs[:half]), split(pairs[half:])


def _alignment_guess(state: StateDict) -> Hyperparameters | None:
    """The alignment arguments a state dict records (None: a malformed record).

    Always all three keys, so that the spec can check every one; `vsr_hyperparameters`
    leaves out those the network does not use."""
    found: Hyperparameters = {"alignment": "none", "flow_levels": 3, "flow_features": 16}
    if "opencv_flow" in state:
        marker = state["opencv_flow"]
        if not isinstance(marker, torch.Tensor) or marker.numel() != 1:
            return None
        codes = {float(code): name for name, code in _OPENCV_FLOW_CODES.items()}
        name = codes.get(float(marker.reshape(-1)[0].item()))
        return None if name is None else {**found, "alignment": name}
    levels = indices(state, "align.levels.", ".conv1.weight")
    if not levels:
        return found
    conv1 = dims(state, "align.levels.0.conv1.weight", 1)
    if conv1 is None:
        return None
    return {"alignment": "learned", "flow_levels": levels[-1] + 1, "flow_features": conv1[0]}


def vsr_guess(state: StateDict) -> Hyperparameters | None:
    """The network's constructor arguments as the key names and shapes imply them."""
    first, last = dims(state, "extract_conv.weight", 2), dims(state, "output_conv.weight", 1)
    if first is None or last is None:
        return None
    num_features, in_channels = first
    factors = upsample_factors(state, num_features)
    if not factors:
        return None
    alignment = _alignment_guess(state)
    if alignment is None:
        return None
    blocks = indices(state, "forward_trunk.blocks.", ".conv1.weight")
    merge = dims(state, "forward_trunk.merge.weight", 2)
    if merge is None or merge[1] not in (2 * num_features, 2 * num_features + 1):
        return None
    return {
        "in_channels": in_channels,
        "out_channels": last[0],
        "num_features": num_features,
        "num_blocks": blocks[-1] + 1 if blocks else 0,
        "scale": math.prod(factors),
        **alignment,
        "warp_error": int(merge[1] == 2 * num_features + 1),
    }


def vsr_hyperparameters(state_dict: StateDict) -> Hyperparameters | None:
    """Constructor kwargs of the :class:`BidirectionalRecurrentVSR` behind ``state_dict``.

    Returns None unless a network built with the result has exactly the same keys and
    tensor shapes as ``state_dict``. Keys must be unprefixed (strip e.g. ``module.``).
    ``alignment`` is included for aligned networks (with ``flow_levels`` and
    ``flow_features`` for a learned flow, and ``warp_error`` when it is on); an unaligned
    one gives the same keys as checkpoints made before alignment.
    """
    found = SPEC.recognise(state_dict)
    if found is None:
        return None
    if found["alignment"] != "learned":
        del found["flow_levels"], found["flow_features"]
    if found["alignment"] == "none":
        del found["alignment"]
    if not found["warp_error"]:
        del found["warp_error"]
    return found


def build_vsr(
    in_channels: int = 3,
    out_channels: int = 3,
    num_features: int = 32,
    num_blocks: int = 4,
    scale: int = 3,
    alignment: str = "none",
    flow_levels: int = 3,
    flow_features: int = 16,
    warp_error: bool = False,
) -> BidirectionalRecurrentVSR:
    """A BidirectionalRecurrentVSR ready to run: alignment "dis" gets OpenCV's DIS flow."""
    model = BidirectionalRecurrentVSR(
        in_channels,
        out_channels,
        num_features,
        num_blocks,
        scale,
        alignment,
        flow_levels,
        flow_features,
        warp_error,
    )
    if model.alignment == "dis":
        from srgan.imaging.optical_flow import dis_flow

        model.flow_estimator = dis_flow
    return model


def _memory_per_pixel(hp: Hyperparameters) -> float:
    """Per frame: features and two hidden states at LR, the upsampling at HR; an aligned
    network also holds two flows and a warped state, and the flow pyramid's activations."""
    per_pixel = 4.0 * int(hp["num_features"]) * (8 + 2 * int(hp["scale"]) ** 2)
    if hp.get("alignment", "none") == "learned":
        per_pixel += 4.0 * (2 * int(hp.get("flow_features", 16)) + int(hp["num_features"]))
    elif hp.get("alignment", "none") != "none":
        per_pixel += 4.0 * (4 + int(hp["num_features"]))
    return per_pixel


SPEC = ArchSpec(
    name="BidirectionalRecurrentVSR",
    build=build_vsr,
    guess=vsr_guess,
    plausible={
        "in_channels": range(1, 17),
        "out_channels": range(1, 17),
        "num_features": range(1, 513),
        "num_blocks": range(0, 257),
        "scale": SUPPORTED_SCALES,
        "alignment": ALIGNMENTS,
        "flow_levels": range(1, 9),
        "flow_features": range(1, 257),
        "warp_error": (0, 1),
    },
    scale=lambda hp: int(hp["scale"]),
    in_channels=lambda hp: int(hp["in_channels"]),
    out_channels=lambda hp: int(hp["out_channels"]),
    memory_per_pixel=_memory_per_pixel,
    example={
        "in_channels": 3,
        "out_channels": 3,
        "num_features": 8,
        "num_blocks": 1,
        "scale": 2,
        "alignment": "none",
        "flow_levels": 3,
        "flow_features": 16,
        "warp_error": 0,
    },
    temporal=True,
)
