"""The embedded teacher's text side: a word-level tokenizer over the grammar, a CLIP text
encoder."""

from __future__ import annotations

import torch
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from .config import TeacherConfig
from .world.grammar import VOCABULARY

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
MAX_TOKENS = 24  # the longest two-object caption is 17 tokens with <bos>/<eos>


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the grammar's vocabulary; other words map to <unk>."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *VOCABULARY])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=MAX_TOKENS,
    )


def build_text_encoder(cfg: TeacherConfig, tokenizer) -> CLIPTextModel:
    """A seeded CLIP text transformer (the teacher keeps it frozen, as ModelScopeT2V keeps CLIP).

    `text_embedding_std` redraws the token and position embeddings larger than CLIP's 0.02.
    At 0.02 the random layers' outputs swamp the word's own embedding in the residual stream,
    so a word's state is mostly a hash of the words before it: over every single-object
    caption, a motion word's state lay 2.6 from its word's mean while the ten motions' means
    lay 2.0–4.3 apart, and a nearest-mean read of the motion on held-out combinations scored
    0.67. At
    0.5 each word keeps its identity (spread 1.3, means 6.1–11.9 apart, held-out read 1.00) with
    some context left for binding words to their object (scripts/check_teacher.py --text-probe).
    """
    encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg.text_hidden,
            intermediate_size=cfg.text_hidden * 2,
            num_hidden_layers=cfg.text_layers,
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=cfg.text_hidden,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    if cfg.text_embedding_std is not None:
        embeddings = encoder.embeddings
        with torch.no_grad():
            embeddings.token_embedding.weight.normal_(0.0, cfg.text_embedding_std)
            embeddings.position_embedding.weight.normal_(0.0, cfg.text_embedding_std)
    return encoder
