"""The embedded teacher's components, built from small configs.

The architecture is ModelScopeT2V's (CLIP-style text encoder, KL-VAE, UNet3DConditionModel)
at a size that trains on a CPU. One addition: a learned frame-position embedding added after
`conv_in`. A UNet3D sees frame order only through zero-padded temporal convolutions, and
DESIGN §3a measured that direction ("moving left" vs "right") did not emerge in a CPU
budget without it; AnimateDiff's motion modules carry frame positions for the same reason.
With `num_frame_positions=0` the class is exactly `UNet3DConditionModel`.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet3DConditionModel, UNetMotionModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.resnet import TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel, TransformerTemporalModelOutput
# diffusers' pipeline loader finds a component's base class by name in the component's own
# module, so a folder naming `mcm_demo.models.UNet3DWithFramePositions` needs it here.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from .toyworld.grammar import VOCABULARY

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
MAX_TOKENS = 24  # the longest two-object caption is 17 tokens with <bos>/<eos>


class UNet3DWithFramePositions(UNet3DConditionModel):
    """UNet3DConditionModel plus a learned per-frame embedding added after `conv_in`.

    `temporal_dropout` sets the dropout diffusers' class hard-codes to 0.1 in its temporal convs
    (it only acts in training). The table
    is resampled linearly to the requested frame count, so a model trained on
    8 frames still runs at 16 (slower motion) instead of failing.
    """

    # The optional additions below start at zero, so a warm start from a UNet without them is
    # exact: `train teacher --init-unet` lets exactly these be missing from the checkpoint.
    ZERO_INITIALISED_PARTS = ("spatial_position_embedding", "resnet_frame_positions.", "caption_time_projection.")

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = ("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types: tuple[str, ...] = ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        norm_num_groups: int | None = 32,
        cross_attention_dim: int = 1024,
        attention_head_dim: int | tuple[int] = 64,
        time_cond_proj_dim: int | None = None,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_eps: float = 1e-5,
        num_attention_heads: int | None = None,
        num_frame_positions: int = 8,
        temporal_dropout: float = 0.1,
        frame_positions_in_resnets: bool = False,
        spatial_positions: bool = False,
        caption_in_time_embedding: bool = False,
    ):
        # ConfigMixin reads the config keys from this signature, hence the explicit list.
        super().__init__(
            sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
            down_block_types=down_block_types, up_block_types=up_block_types,
            block_out_channels=block_out_channels, layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups, cross_attention_dim=cross_attention_dim,
            attention_head_dim=attention_head_dim, time_cond_proj_dim=time_cond_proj_dim,
            downsample_padding=downsample_padding, mid_block_scale_factor=mid_block_scale_factor,
            act_fn=act_fn, norm_eps=norm_eps, num_attention_heads=num_attention_heads)
        # diffusers hard-codes dropout 0.1 in the temporal convs; DESIGN §3a's recipe removes it:
        # at this size the temporal path is the only way frames agree on where the object is.
        for layer in self.modules():
            if isinstance(layer, TemporalConvLayer):
                for module in layer.modules():
                    if isinstance(module, torch.nn.Dropout):
                        module.p = temporal_dropout
        # Stills (one frame) skip every temporal layer, as ModelScopeT2V and AnimateDiff train
        # their spatial layers on images: `train teacher --image-batch` mixes them into each step.
        for module in self.modules():
            if isinstance(module, (TemporalConvLayer, TransformerTemporalModel)):
                module.forward = functools.partial(_skip_on_stills, module.forward)
        channels = self.conv_in.out_channels
        self.frame_position_embedding = torch.nn.Parameter(torch.randn(num_frame_positions, channels) * 0.1)
        self._num_frames = None
        # Optionally a learned embedding of each latent pixel's place, added with the frame's.
        # Convolutions only learn where they are from the zero padding at the edges, but from
        # pure noise the caption alone must say *where* each frame puts the object ("moving
        # left" starts on the right): on 16×16 latents the UNet learned the colour and never
        # that layout. Zero-initialised, so a model warm-started from one without it starts unchanged.
        self.spatial_position_embedding = None
        if spatial_positions:
            self.spatial_position_embedding = torch.nn.Parameter(torch.zeros(channels, sample_size, sample_size))
        self.conv_in.register_forward_hook(self._add_frame_positions)
        # Optionally every resnet's time-embedding projection gets its own per-frame bias too,
        # as AnimateDiff gives each motion module positions: the frame index then reaches
        # every level directly instead of only through what survives from conv_in.
        # Zero-initialised, so a model warm-started from one without them starts unchanged.
        self.resnet_frame_positions = torch.nn.ParameterList()
        if frame_positions_in_resnets:
            projections = [m.time_emb_proj for m in self.modules() if isinstance(getattr(m, "time_emb_proj", None),
                                                                                   torch.nn.Linear)]
            for index, projection in enumerate(projections):
                self.resnet_frame_positions.append(torch.nn.Parameter(torch.zeros(num_frame_positions,
                                                                                  projection.out_features)))
                # the hook looks its table up by index: from_pretrained swaps in new Parameter objects
                projection.register_forward_hook(functools.partial(self._add_resnet_frame_positions, index))

        # Optionally the caption, pooled over its tokens, is added to the time embedding, as
        # SDXL adds its pooled text: every resnet then gets a caption-dependent per-channel bias,
        # also at levels without cross-attention. The x4 teacher's 16×16 level has none, and
        # there an object's outline lives (at 8×8 it is 2–3 latent pixels across): its samples
        # never took the shape word (scripts/check_teacher.py --shape-probe). Zero-initialised,
        # so a warm start from a UNet without it starts unchanged.
        self.caption_time_projection = None
        self._pooled_caption = None
        if caption_in_time_embedding:
            width = self.time_embedding.linear_2.out_features
            self.caption_time_projection = torch.nn.Linear(cross_attention_dim, width)
            torch.nn.init.zeros_(self.caption_time_projection.weight)
            torch.nn.init.zeros_(self.caption_time_projection.bias)
            self.time_embedding.register_forward_hook(self._add_pooled_caption)

    def _add_pooled_caption(self, module, inputs, output):
        # the time embedding is one row per clip here; diffusers repeats it per frame afterwards
        return output + self.caption_time_projection(self._pooled_caption.to(output.dtype))

    def _add_resnet_frame_positions(self, index, module, inputs, output):
        return output + self._per_row(self.resnet_frame_positions[index], output.shape[0]).to(output.dtype)

    def _per_row(self, table, rows):
        """The table resampled to the current frame count, one row per (clip, frame)."""
        num_frames = self._num_frames
        if table.shape[0] != num_frames:
            table = F.interpolate(table.T[None], size=num_frames, mode="linear", align_corners=True)[0].T
        return table.repeat(rows // num_frames, 1)

    def _add_frame_positions(self, module, inputs, output):
        if self._num_frames > 1:  # a still has no place in time
            output = output + self._per_row(self.frame_position_embedding, output.shape[0]).to(output.dtype)[:, :, None, None]
        if self.spatial_position_embedding is not None:
            places = self.spatial_position_embedding
            if places.shape[1:] != output.shape[2:]:  # another resolution: stretch the grid to it
                places = F.interpolate(places[None], size=output.shape[2:], mode="bilinear", align_corners=True)[0]
            output = output + places.to(output.dtype)
        return output

    def forward(self, sample, *args, **kwargs):
        self._num_frames = sample.shape[2]
        if self.caption_time_projection is not None:
            text = kwargs["encoder_hidden_states"] if "encoder_hidden_states" in kwargs else args[1]
            # mean over all positions: fixed-length sequences from a causal encoder, so the
            # padding after <eos> has read the whole caption too
            self._pooled_caption = text.mean(1)
        return super().forward(sample, *args, **kwargs)


def _skip_on_stills(forward, hidden_states, *args, num_frames: int = 1, return_dict: bool = True, **kwargs):
    """A temporal layer's forward that passes one-frame inputs through unchanged."""
    if num_frames > 1:
        if "return_dict" in inspect.signature(forward).parameters:
            kwargs["return_dict"] = return_dict
        return forward(hidden_states, *args, num_frames=num_frames, **kwargs)
    if isinstance(forward.__self__, TransformerTemporalModel):
        return TransformerTemporalModelOutput(sample=hidden_states) if return_dict else (hidden_states,)
    return hidden_states


@dataclasses.dataclass
class TeacherConfig:
    """Sizes of the embedded teacher (DESIGN §3a: v-prediction, zero terminal SNR, ×8 VAE)."""
    latent_channels: int = 8
    vae_channels: tuple[int, ...] = (16, 32, 64, 64)  # four levels: 64 px → 8×8 latents
    text_hidden: int = 64
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (32, 64, 64)
    unet_plain_levels: int = 0  # top UNet levels without cross-attention (the costly full-size ones)
    unet_heads: int = 4
    unet_temporal_dropout: float = 0.1  # diffusers' default, which the first teacher trained with
    unet_frame_positions_in_resnets: bool = False
    unet_spatial_positions: bool = False
    unet_caption_in_time_embedding: bool = False
    text_embedding_std: float | None = None  # None: CLIP's 0.02 (see build_text_encoder)
    num_frames: int = 8

    @property
    def latent_size(self) -> int:
        return 64 // 2 ** (len(self.vae_channels) - 1)


# `train teacher --size`: x8 is the first shipped teacher's; x4 keeps 16×16 latents, where
# the ×8 VAE's 8×8 could not: its reconstructions of real clips read back shape 0.60 (colour
# 1.00, motion 0.98), a ceiling no UNet trained on its latents can pass; the ×4 VAE's read
# back 0.90 (scripts/check_teacher.py --vae-ceiling). The 16×16 top level goes without
# cross-attention and at 16 channels, so a training step costs ~1.7× the x8 one. x4 also
# drops the temporal-conv dropout, as DESIGN §3a's recipe does, and draws the frozen text
# encoder's embeddings at std 0.5 (build_text_encoder says why).
TEACHER_SIZES = {
    "x8": TeacherConfig(),
    "x4": TeacherConfig(latent_channels=4, vae_channels=(16, 32, 64), unet_channels=(16, 32, 64, 64),
                        unet_plain_levels=1, unet_temporal_dropout=0.0, text_embedding_std=0.5),
}


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the grammar's vocabulary; other words map to <unk>."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *VOCABULARY])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   pad_token=PAD, model_max_length=MAX_TOKENS)


def build_text_encoder(cfg: TeacherConfig, tokenizer) -> CLIPTextModel:
    """A seeded CLIP text transformer (the teacher keeps it frozen, as ModelScopeT2V keeps CLIP).

    `text_embedding_std` redraws the token and position embeddings larger than CLIP's 0.02.
    At 0.02 the random layers' outputs swamp the word's own embedding in the residual stream,
    so a word's state is mostly a hash of the words before it: over every single-object
    caption, a motion word's state lay 2.6 from its word's mean while the ten motions' means
    lay 2.0–4.3 apart, and a nearest-mean read of the motion on held-out combinations scored 0.67. At
    0.5 each word keeps its identity (spread 1.3, means 6.1–11.9 apart, held-out read 1.00) with
    some context left for binding words to their object (scripts/check_teacher.py --text-probe).
    """
    encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_hidden, intermediate_size=cfg.text_hidden * 2,
        num_hidden_layers=cfg.text_layers, num_attention_heads=2, max_position_embeddings=MAX_TOKENS,
        projection_dim=cfg.text_hidden, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    if cfg.text_embedding_std is not None:
        embeddings = encoder.embeddings
        with torch.no_grad():
            embeddings.token_embedding.weight.normal_(0.0, cfg.text_embedding_std)
            embeddings.position_embedding.weight.normal_(0.0, cfg.text_embedding_std)
    return encoder


def build_vae(cfg: TeacherConfig) -> AutoencoderKL:
    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=cfg.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.vae_channels, layers_per_block=1, norm_num_groups=8, sample_size=64)


def build_unet(cfg: TeacherConfig) -> UNet3DWithFramePositions:
    n, plain = len(cfg.unet_channels), cfg.unet_plain_levels
    return UNet3DWithFramePositions(
        sample_size=cfg.latent_size, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        # cross-attention at every level below the plain ones: DESIGN §3a found the caption
        # otherwise barely steers
        down_block_types=("DownBlock3D",) * plain + ("CrossAttnDownBlock3D",) * (n - plain),
        up_block_types=("CrossAttnUpBlock3D",) * (n - plain) + ("UpBlock3D",) * plain,
        block_out_channels=cfg.unet_channels, layers_per_block=1, norm_num_groups=8,
        cross_attention_dim=cfg.text_hidden, attention_head_dim=cfg.unet_heads,
        num_frame_positions=cfg.num_frames, temporal_dropout=cfg.unet_temporal_dropout,
        frame_positions_in_resnets=cfg.unet_frame_positions_in_resnets,
        spatial_positions=cfg.unet_spatial_positions,
        caption_in_time_embedding=cfg.unet_caption_in_time_embedding)


def start_new_attention_as_no_ops(unet, missing: list[str]) -> list[str]:
    """Zero the output projection of each (temporal) transformer a warm start had no weights for.

    A transformer adds its output to its input, so with `proj_out` at zero the grown UNet
    computes exactly what the checkpoint did; training then opens the new attention up. This
    is how a UNet trained with a plain top level gains cross-attention there. Returns the
    missing keys those transformers account for.
    """
    missing_set, covered = set(missing), []
    for name, module in unet.named_modules():
        if not hasattr(module, "transformer_blocks") or not hasattr(module, "proj_out"):
            continue
        keys = [f"{name}.{k}" for k in module.state_dict()]
        if not all(k in missing_set for k in keys):
            continue
        with torch.no_grad():
            for p in module.proj_out.parameters():
                p.zero_()
        covered += keys
    return covered


def build_noise_schedule() -> DDPMScheduler:
    """SD's betas rescaled to zero terminal SNR, v-prediction, trailing spacing.

    With the plain schedule ~7% of the signal survives at t=999, the model reads the
    background from the noise instead of the caption, and samples drift (DESIGN §3a).
    """
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
        clip_sample=False)


def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    ids = tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS,
                    return_tensors="pt").input_ids.to(text_encoder.device)
    return text_encoder(ids).last_hidden_state


def unet_forward(unet, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """The UNet's raw output for (B, C, F, H, W) latents. UNet3D takes one text row per clip;
    AnimateDiff's UNetMotionModel folds the frames into the batch and wants one per frame."""
    if isinstance(unet, UNetMotionModel):
        text = text.repeat_interleave(x.shape[2], dim=0)
    return unet(x, t, encoder_hidden_states=text).sample
