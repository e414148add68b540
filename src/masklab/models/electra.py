"""ELECTRA's two networks (Clark et al. 2020, arXiv 2003.10555), as transformers' own classes.

The discriminator (`ElectraForPreTraining`, built at the run's preset by `models.build.build_electra`) is
the run's model: RUN/checkpoint, an encoder that `AutoModel` and `masklab finetune` load. The generator
(`ElectraForMaskedLM`) is a narrower masked LM of the same depth that shares the discriminator's whole
embedding layer (token, position and type tables and their LayerNorm) and, tied to it, its output
projection; it is saved beside the checkpoint as RUN/generator, a fill-mask model. Its width is the
discriminator's times `electra.generator_fraction` (the paper found 1/4 to 1/2 best), in heads of the
discriminator's head size, with the 4x feed-forward of the official code (`get_generator_config`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn
from transformers import ElectraForMaskedLM, ElectraForPreTraining

from masklab.errors import UserError

GENERATOR_DIR = "generator"  # RUN/generator, beside RUN/checkpoint


def generator_shape(hidden: int, heads: int, fraction: float) -> tuple[int, int]:
    """(hidden size, heads) of the generator: the discriminator's width times `fraction`, in whole heads of the
    discriminator's head size (at least one)."""
    width = max(1, round(hidden * fraction))
    n_heads = max(1, width // (hidden // heads))
    return n_heads * max(1, width // n_heads), n_heads


def build_generator(discriminator, fraction: float, seed: int):
    """A fresh generator for `discriminator`, sharing its embedding layer and output-tied to it. Initialised from
    its own seed, so it does not depend on (or disturb) the global random stream."""
    config = copy.deepcopy(discriminator.config)  # vocabulary, depth, positions, dropout, attention kernel
    config.hidden_size, config.num_attention_heads = generator_shape(
        config.hidden_size, config.num_attention_heads, fraction
    )
    config.intermediate_size = 4 * config.hidden_size
    config.architectures = ["ElectraForMaskedLM"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = ElectraForMaskedLM(config).to(discriminator.device)
    return share_embeddings(generator, discriminator)


def share_embeddings(generator, discriminator):
    """Make `generator` use the discriminator's embedding layer (and tie its output projection to it)."""
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.tie_weights()
    return generator


class ElectraPair(nn.Module):
    """The generator and the discriminator as one module: what training, held-out figures and sentence scores use.

    The two halves of each network (encoder, head) are exposed apart so that a head runs only where its
    output is needed (the generator's vocabulary projection at masked positions)."""

    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator

    @property
    def config(self):
        return self.discriminator.config

    def generator_hidden(self, input_ids, attention_mask=None) -> torch.Tensor:
        return self.generator.electra(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # (B, T, Hg)

    def generator_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.generator.generator_lm_head(self.generator.generator_predictions(hidden))  # (..., V)

    def discriminator_hidden(self, input_ids, attention_mask=None) -> torch.Tensor:
        return self.discriminator.electra(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def discriminator_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.discriminator.discriminator_predictions(hidden)  # (...,): logit of "replaced"


def generator_dir(checkpoint: Path) -> Path:
    """RUN/generator for a run's RUN/checkpoint (or its RUN/checkpoint.old)."""
    path = checkpoint.parent / GENERATOR_DIR
    if not (path / "config.json").exists():
        raise UserError(
            f"{checkpoint} is an ELECTRA discriminator without its generator ({path} is missing); "
            "masked-token figures and fill-mask need the generator a masklab electra run saves there"
        )
    return path


def load_pair(checkpoint: Path) -> ElectraPair:
    """The discriminator in `checkpoint` and the generator beside it, in eval mode."""
    try:
        discriminator = ElectraForPreTraining.from_pretrained(str(checkpoint))
        generator = ElectraForMaskedLM.from_pretrained(str(generator_dir(checkpoint)))
    except UserError:
        raise
    except Exception as exc:  # damaged weights
        raise UserError(
            f"could not load the ELECTRA pair in {checkpoint} ({type(exc).__name__}); is the run complete?"
        ) from None
    return ElectraPair(generator, discriminator).eval()


def load_generator(checkpoint: Path, discriminator):
    """The generator saved beside `checkpoint` (an electra run's), re-sharing `discriminator`'s embeddings: what a
    run continuing from that run (model.init) trains on."""
    generator = ElectraForMaskedLM.from_pretrained(str(generator_dir(checkpoint)))
    return share_embeddings(generator.to(discriminator.device), discriminator)
