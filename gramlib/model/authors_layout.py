"""The GRAM authors' released checkpoint layouts, read and renamed onto gramlib's ``GRAM`` names.

The authors publish their weights in three containers (``reference/gram-checkpoints.md`` §1-2):

* ``model.safetensors`` -- the Hugging Face ``PyTorchModelHubMixin`` file (a folder or the file);
* a plain ``RuntimeGRAMT`` state dict (``.pt`` / ``.bin``), read with ``torch.load(weights_only=True)``;
* a Lightning ``.ckpt`` (its ``state_dict``), read the same way -- never unpickling arbitrary objects.

Which container a file is comes from its first bytes, not its name. Keys sit under one of the
prefixes ``""`` (Lightning), ``model.`` (``RuntimeGRAMT``), ``encoder.model.`` (``MyModel``) or
``encoder.``; the prefix is the one under which ``patch_embed.proj.weight`` exists. The variant comes
from tensor shapes only (Lightning checkpoints carry no hyperparameters): ``patch_embed.proj.weight``
(D, C, 16, 8) is frame patching and (D, C, 128, 2) time patching, C = 1 clean, 2 binaural, 7
ambisonics; ``encoder.layers.encoder_layer_<i>.*`` is a GRAM-T (torchvision ViT) encoder and
``encoder_v.layers.<i>.mixer.*`` a GRAM-M (Mamba-2) one; widths and depth are read off the shapes.

Every encoder tensor is renamed (and the patch kernel transposed: the authors convolve (B, C, F, T),
we (B, C, T, F)); the decoder, mask token, reconstruction head and mel buffers are recognised and
dropped (an encoder needs none of them; the mel buffers are returned for a front-end check). Any key
left over is an error naming it, and so is any encoder key the file lacks: never a partial load.
Every error is a one-line :class:`AuthorsCheckpointError` naming the file and what was expected.
"""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .checkpoint import CheckpointError

PREFIXES = ("", "model.", "encoder.", "encoder.model.")  # Lightning, RuntimeGRAMT, (wrapper), MyModel
ANCHOR = "patch_embed.proj.weight"  # present in every GRAM-T and GRAM-M layout
HUB_FILE = "model.safetensors"
N_MELS, CHUNK_FRAMES = 128, 200  # the authors' input: 128 mel bins x input_tdim 200 frames (2 s)
PATCHINGS = {(16, 8): "frame", (128, 2): "time"}  # (mels, frames) of a patch
FORMATS = {1: "clean", 2: "binaural", 7: "foa"}  # feature channels C -> gramlib format
FRONTEND = {"melspec.spectrogram.window": "window", "melspec.mel_scale.fb": "fb"}  # buffers kept for a check
RUNTIME_FRONTEND = {"mel_spec." + k: v for k, v in FRONTEND.items()}  # RuntimeGRAMT's own extractor, beside model.

# GRAM-T: torchvision EncoderBlock sub-keys -> gramlib Block sub-keys (MLP index 3 is our 2: no dropouts)
T_LAYER = {"ln_1.weight": "norm1.weight", "ln_1.bias": "norm1.bias",
           "self_attention.in_proj_weight": "attn.qkv.weight", "self_attention.in_proj_bias": "attn.qkv.bias",
           "self_attention.out_proj.weight": "attn.proj.weight", "self_attention.out_proj.bias": "attn.proj.bias",
           "ln_2.weight": "norm2.weight", "ln_2.bias": "norm2.bias",
           "mlp.0.weight": "mlp.0.weight", "mlp.0.bias": "mlp.0.bias",
           "mlp.3.weight": "mlp.2.weight", "mlp.3.bias": "mlp.2.bias"}
T_LEGACY = {".mlp.linear_1.": ".mlp.0.", ".mlp.linear_2.": ".mlp.3."}  # older torchvision names, renamed as it does
T_TOP = {"encoder.ln.weight": "encoder.norm.weight", "encoder.ln.bias": "encoder.norm.bias"}
T_LAYER_KEY = re.compile(r"encoder\.layers\.encoder_layer_(\d+)\.(.+)")
# GRAM-M: mamba_ssm Block / Mamba2 sub-keys -> gramlib MambaLayer sub-keys
M_LAYER = {"norm.weight": "norm.weight", "mixer.in_proj.weight": "mixer.in_proj.weight",
           "mixer.conv1d.weight": "mixer.conv.weight", "mixer.conv1d.bias": "mixer.conv.bias",
           "mixer.dt_bias": "mixer.dt_bias", "mixer.A_log": "mixer.A_log", "mixer.D": "mixer.D",
           "mixer.norm.weight": "mixer.norm.weight", "mixer.out_proj.weight": "mixer.out_proj.weight"}
M_TOP = {"encoder_v.norm_f.weight": "encoder.norm.weight"}  # the output norm (``encoder_norm`` is unused)
M_LAYER_KEY = re.compile(r"encoder_v\.layers\.(\d+)\.(.+)")
SHARED = {"cls_token": "cls_token", "patch_embed.proj.weight": "patch_embed.weight",
          "patch_embed.proj.bias": "patch_embed.bias"}
POSITIONS = {"transformer": "encoder.pos_embedding", "mamba": "encoder_pos_embed"}
DROPPED = re.compile(r"mask_token|decoder_pos_embed|decoder_(embed|norm)\.(weight|bias)|decoder_blocks\.\d+\..+"
                     r"|spec_pred\.\d+\.(weight|bias)|melspec\.(spectrogram\.window|mel_scale\.fb)")
M_DROPPED = re.compile(r"decoder_v\.\d+\..+|encoder_norm\.(weight|bias)")  # GRAM-M's decoder; its unused norm


class AuthorsCheckpointError(CheckpointError):
    """An authors' checkpoint that cannot be read: unreadable, of an unknown layout, or incomplete."""


@dataclass(frozen=True)
class Variant:
    """What a checkpoint's tensor shapes say it is."""

    encoder: str  # "transformer" (GRAM-T) or "mamba" (GRAM-M)
    in_channels: int  # C: 1 clean, 2 binaural, 7 ambisonics
    patch_mels: int  # 16 (frame patching) or 128 (time patching)
    patch_frames: int  # 8 or 2
    embed_dim: int  # D
    depth: int  # encoder blocks / Mamba layers
    mlp_dim: int = 0  # GRAM-T: hidden width of the MLP (3072 at paper size)
    mamba_inner: int = 0  # GRAM-M: expand * D (1536)
    mamba_heads: int = 0  # GRAM-M: scan heads (24)
    mamba_state: int = 0  # GRAM-M: d_state (128)

    @property
    def patching(self) -> str:
        return PATCHINGS[self.patch_mels, self.patch_frames]

    @property
    def format(self) -> str:
        return FORMATS[self.in_channels]

    @property
    def name(self) -> str:
        kind = "GRAM-T" if self.encoder == "transformer" else "GRAM-M"
        return f"{kind} {self.format} {self.patching} (D {self.embed_dim}, depth {self.depth})"


@dataclass
class AuthorsCheckpoint:
    """A read checkpoint: encoder tensors under gramlib names, and where each came from.

    ``positions`` (N, D) is the stored table without its CLS row; ``cls_position`` (D,) is that row
    (zeros in the authors' files), which the authors add to the CLS token.
    """

    file: Path | str
    container: str  # "safetensors", "state_dict" or "lightning"
    prefix: str
    variant: Variant
    state: dict[str, torch.Tensor]  # gramlib name -> tensor (CLS token and encoder; no positions)
    positions: torch.Tensor
    cls_position: torch.Tensor
    source_keys: dict[str, str]  # gramlib name -> the file's key
    dropped: list[str] = field(default_factory=list)  # decoder / head / mel keys, recognised and unused
    frontend: dict[str, torch.Tensor] = field(default_factory=dict)  # "window", "fb" when the file has them


def fail(file: Path | str, message: str) -> AuthorsCheckpointError:
    """A one-line error about ``file``."""
    return AuthorsCheckpointError(f"{file}: " + " ".join(message.split()))


def names(keys, limit: int = 6) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# ---------------------------------------------------------------------------------- containers
def read_tensors(path: Path | str) -> tuple[dict[str, torch.Tensor], str, Path]:
    """All tensors of a checkpoint file or Hugging Face folder -> (state, container, file read)."""
    path = Path(path)
    file = path / HUB_FILE if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        raise fail(path, f"no {HUB_FILE} in this folder; expected a Hugging Face model folder, or the checkpoint "
                         f"file itself (.safetensors, a .pt/.bin state dict, a Lightning .ckpt)")
    if not file.is_file():
        raise fail(file, "no such file; expected a .safetensors file, a .pt/.bin state dict or a Lightning .ckpt")
    with open(file, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Test it first: that length's
    # low byte can be 0x80, a legacy pickle's first byte.
    is_safetensors = len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < file.stat().st_size
    if not is_safetensors and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):  # a torch zip, a legacy pickle
        return _read_torch(file)
    try:
        return load_file(str(file)), "safetensors", file
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise fail(file, f"not a readable safetensors file ({err}); expected a .safetensors file (complete, "
                         f"not truncated), a .pt/.bin state dict or a Lightning .ckpt") from err


def _read_torch(file: Path) -> tuple[dict[str, torch.Tensor], str, Path]:
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise fail(file, f"torch.load(weights_only=True) refused it ({str(err).splitlines()[0]}): it pickles "
                         f"objects other than tensors and containers. If you trust the file, re-save its "
                         f"tensors: torch.save(torch.load(f, weights_only=False)['state_dict'], 'weights.pt')") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise fail(file, f"not a readable torch checkpoint ({err}); expected a complete .pt/.bin state dict or "
                         f"Lightning .ckpt") from err
    container = "state_dict"
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj, container = obj["state_dict"], "lightning"
    if not isinstance(obj, dict) or not obj:
        raise fail(file, f"holds a {type(obj).__name__}, not a state dict; expected a mapping of tensors or a "
                         f"Lightning checkpoint with a 'state_dict'")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise fail(file, f"holds non-tensor entries ({names(bad)}); expected a mapping of tensors or a Lightning "
                         f"checkpoint with a 'state_dict' (top-level keys: {names(obj)})")
    return obj, container, file


# ---------------------------------------------------------------------------------- prefix and variant
def find_prefix(keys, file: Path | str) -> str:
    """The key prefix under which the file holds a GRAM model (one of :data:`PREFIXES`)."""
    found = [p for p in PREFIXES if p + ANCHOR in keys]
    if not found:
        raise fail(file, f"unknown architecture: no {ANCHOR} under any of the prefixes {list(PREFIXES)}, so this is "
                         f"not a GRAM-T or GRAM-M checkpoint (its keys include {names(keys)})")
    if len(found) > 1:
        raise fail(file, f"holds more than one model ({', '.join(p + ANCHOR for p in found)}); expected one")
    return found[0]


def detect(shapes: Mapping[str, tuple], file: Path | str, prefix: str = "") -> Variant:
    """The variant from the shapes of the (``prefix``-stripped) keys; works on meta tensors' shapes too."""
    shapes = {k: tuple(v) for k, v in shapes.items()}
    patch = shapes[ANCHOR]
    if len(patch) != 4 or patch[1] not in FORMATS or tuple(patch[2:]) not in PATCHINGS:
        raise fail(file, f"{prefix}{ANCHOR} has shape {patch}, which matches no GRAM variant; expected "
                         f"(D, C, 16, 8) (frame patching) or (D, C, 128, 2) (time patching) with C = 1 (clean), "
                         f"2 (binaural) or 7 (ambisonics)")
    D, C, pm, pf = patch
    if any(M_LAYER_KEY.fullmatch(k) for k in shapes):
        encoder, layer_key = "mamba", M_LAYER_KEY
    elif any(T_LAYER_KEY.fullmatch(k) for k in shapes):
        encoder, layer_key = "transformer", T_LAYER_KEY
    else:
        raise fail(file, f"unknown architecture: neither GRAM-T encoder keys (encoder.layers.encoder_layer_<i>.*) nor "
                         f"GRAM-M ones (encoder_v.layers.<i>.mixer.*) (its keys include {names(shapes)})")
    n_tokens = (N_MELS // pm) * (CHUNK_FRAMES // pf)
    want = (1, 1 + n_tokens, D)
    table = POSITIONS[encoder]
    if shapes.get(table) != want:
        raise fail(file, f"{prefix}{table} has shape {shapes.get(table)}; a {PATCHINGS[pm, pf]}-patching model of "
                         f"width {D} needs {want} (a CLS row and {n_tokens} patches)")
    depth = 1 + max(int(m.group(1)) for m in map(layer_key.fullmatch, shapes) if m)
    base = dict(encoder=encoder, in_channels=C, patch_mels=pm, patch_frames=pf, embed_dim=D, depth=depth)
    try:
        if encoder == "transformer":
            return Variant(**base, mlp_dim=shapes["encoder.layers.encoder_layer_0.mlp.0.weight"][0])
        inner = shapes["encoder_v.layers.0.mixer.norm.weight"][0]
        heads = shapes["encoder_v.layers.0.mixer.A_log"][0]
        rows = shapes["encoder_v.layers.0.mixer.in_proj.weight"][0]  # z, x, B, C, dt
    except KeyError as err:
        raise fail(file, f"lacks {prefix}{err.args[0]}, needed to read the {encoder} encoder's widths") from err
    state, odd = divmod(rows - 2 * inner - heads, 2)
    if odd or state <= 0:
        raise fail(file, f"{prefix}encoder_v.layers.0.mixer.in_proj.weight has {rows} rows; a Mamba-2 mixer of "
                         f"inner width {inner} and {heads} heads needs 2 x {inner} + 2 x d_state + {heads}")
    return Variant(**base, mamba_inner=inner, mamba_heads=heads, mamba_state=state)


# ---------------------------------------------------------------------------------- renaming
def key_map(variant: Variant) -> dict[str, str]:
    """The file's encoder keys (prefix stripped) -> gramlib ``GRAM`` names, for ``variant``'s depth."""
    if variant.encoder == "transformer":
        layers = {f"encoder.layers.encoder_layer_{i}.{k}": f"encoder.blocks.{i}.{v}"
                  for i in range(variant.depth) for k, v in T_LAYER.items()}
        return {**SHARED, **layers, **T_TOP}
    layers = {f"encoder_v.layers.{i}.{k}": f"encoder.layers.{i}.{v}"
              for i in range(variant.depth) for k, v in M_LAYER.items()}
    return {**SHARED, **layers, **M_TOP}


def split_prefix(state: Mapping[str, torch.Tensor], file: Path | str) -> tuple[str, dict, dict]:
    """(prefix, the model's keys with the prefix stripped, {key: (name, tensor)} of the runtime front-end
    buffers beside the model, e.g. RuntimeGRAMT's ``mel_spec.melspec.mel_scale.fb`` next to ``model.``)."""
    prefix = find_prefix(state, file)
    inner, frontend, stray = {}, {}, []
    roots = [prefix[:i] for i in range(len(prefix)) if i == 0 or prefix[i - 1] == "."]  # "", "encoder.", ...
    for key, value in state.items():
        runtime = [key[len(r):] for r in roots if key.startswith(r) and key[len(r):] in RUNTIME_FRONTEND]
        if key.startswith(prefix):
            inner[key[len(prefix):]] = value
        elif runtime:
            frontend[key] = (RUNTIME_FRONTEND[runtime[0]], value)
        else:
            stray.append(key)
    if stray:
        raise fail(file, f"unexpected key(s) outside the model prefix {prefix!r}: {names(stray)}")
    return prefix, inner, frontend


def read(path: Path | str) -> AuthorsCheckpoint:
    """Read an authors' checkpoint (file or Hugging Face folder): every encoder key, or an error."""
    return from_state(*read_tensors(path))


def from_state(state: Mapping[str, torch.Tensor], container: str, file: Path | str) -> AuthorsCheckpoint:
    """:func:`read` on tensors already in memory (``file`` names them in errors; meta tensors work)."""
    prefix, inner, runtime = split_prefix(state, file)
    renamed = {}
    for key, value in inner.items():
        new = key
        for old_part, new_part in T_LEGACY.items():
            new = new.replace(old_part, new_part) if T_LAYER_KEY.fullmatch(key) else new
        if new in renamed:
            raise fail(file, f"holds both {prefix}{new} and its older torchvision name; expected one")
        renamed[new] = value
    inner = renamed
    variant = detect({k: v.shape for k, v in inner.items()}, file, prefix)
    mapping = key_map(variant)
    position_key = POSITIONS[variant.encoder]
    dropped_re = DROPPED if variant.encoder == "transformer" else re.compile(f"{DROPPED.pattern}|{M_DROPPED.pattern}")
    missing = sorted(set(mapping) - set(inner))
    unexpected = sorted(k for k in inner if k not in mapping and k != position_key and not dropped_re.fullmatch(k))
    if missing or unexpected:
        raise fail(file, f"does not hold a complete {variant.name} encoder: missing key(s) "
                         f"[{names(prefix + k for k in missing)}], unexpected key(s) "
                         f"[{names(prefix + k for k in unexpected)}]")
    ours = {mapping[k]: v for k, v in inner.items() if k in mapping}
    ours["patch_embed.weight"] = ours["patch_embed.weight"].transpose(2, 3).contiguous()  # (D, C, F, T) -> (D, C, T, F)
    table = inner[position_key][0].float()  # (1 + N, D)
    frontend = {FRONTEND[k]: v for k, v in inner.items() if k in FRONTEND}
    for name, value in runtime.values():  # the runtime extractor's copy: checked too, when the model has none
        frontend.setdefault(name, value)
    return AuthorsCheckpoint(file=file, container=container, prefix=prefix, variant=variant, state=ours,
                             positions=table[1:], cls_position=table[0],
                             source_keys={v: prefix + k for k, v in mapping.items()},
                             dropped=sorted(prefix + k for k in inner if dropped_re.fullmatch(k)) + sorted(runtime),
                             frontend=frontend)
