"""Text classification data: tokenizer, vocabulary, n-gram encoding into padded id tensors, and
the TF-IDF weight of each id.

The encoding is fastText's: a document is the bag of its word ids plus, with `ngrams=2`, the
ids of its word bigrams hashed into `bigram_buckets` extra rows of the embedding table (no bigram
vocabulary to build or store). The word vocabulary is built from the training split only:
`<pad>` = 0, `<unk>` = 1, then words seen at least `min_freq` times, most frequent first, at most
`max_vocab_size` entries in all.

With `weighting="tfidf"` (the configs' default) a batch is `((ids, weights), labels)`: an id's
weight is its TF-IDF value as scikit-learn's `TfidfVectorizer(sublinear_tf=True)` computes it
((1 + ln tf) x idf, the document's vector scaled to length 1), spread over the id's positions,
with bigram ids weighted `bigram_weight`. The document frequencies come from the training split
and are kept in `fitted`, so eval and resume weigh as training did. With `weighting="none"` a
batch is `(ids, labels)` and the model averages the embeddings of the ids.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from trainkit.data.base import InMemoryDataModule
from trainkit.data.batches import TensorBatches
from trainkit.data.split_record import text_keys
from trainkit.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
_TAG = re.compile(r"<[^>]+>")  # HTML such as the <br /> in IMDB reviews
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")  # letters and digits of any alphabet
WEIGHTINGS = ("tfidf", "none")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers (of any alphabet: "café" stays whole); HTML tags and
    punctuation dropped ("don't" stays whole)."""
    return _TOKEN.findall(_TAG.sub(" ", text.lower()))


class Vocabulary:
    """Word -> id, built from training texts only."""

    def __init__(self, words: Sequence[str]) -> None:
        self.itos = [PAD, UNK, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, docs: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None):
        counts = Counter(w for doc in docs for w in doc)
        words = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max(0, max_size - 2)]
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def lookup(self, word: str) -> int:
        return self.stoi.get(word, 1)


def encode(
    tokens: list[str], vocab: Vocabulary, ngrams: int, buckets: int, max_length: int
) -> list[int]:
    """Word ids interleaved with hashed bigram ids (so truncation keeps both), cut at max_length:
    w0, w1, (w0 w1), w2, (w1 w2), ... Runs once per document of the corpus (IMDB: 50,000)."""
    stoi = vocab.stoi
    if ngrams < 2:
        return [stoi.get(w, 1) for w in tokens[:max_length]]
    tokens = tokens[: max_length // 2 + 1]  # every word after the first adds two ids
    base = len(vocab)
    ids = [stoi.get(tokens[0], 1)] if tokens else []
    for prev, word in zip(tokens[:-1], tokens[1:], strict=True):
        ids.append(stoi.get(word, 1))
        ids.append(base + zlib.crc32(f"{prev} {word}".encode()) % buckets)
    return ids[:max_length]


def relabel(
    corpus: dict[str, tuple[list[str], list[int]]], names: list[str], trained: list[str]
) -> dict[str, tuple[list[str], list[int]]]:
    """Label ids of `corpus` (ids into `names`) as ids into `trained`, the classes a model was
    trained on; a label that is not among them is an error."""
    unknown = sorted(set(names) - set(trained))
    if unknown:
        raise DataError(
            f"the data has the label(s) {unknown}, which the checkpoint's model was not trained "
            f"on (its classes: {trained}); use data with those classes."
        )
    ids = [trained.index(name) for name in names]
    return {split: (texts, [ids[y] for y in labels]) for split, (texts, labels) in corpus.items()}


def document_frequencies(ids: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """df[i] = the number of rows of `ids` (documents, padded with 0) that contain id i."""
    df = torch.zeros(size, dtype=torch.long)
    for part in ids.split(chunk):
        rows = torch.arange(len(part)).unsqueeze(1)
        pairs = torch.unique(rows * size + part)  # each (document, id) once
        df += torch.bincount(pairs % size, minlength=size)
    return df


def bag_weights(ids: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """The weight of each position of `ids` (documents padded with 0, idf[0] = 0): summed over
    the positions of one id they give (1 + ln tf) * idf[id] / norm, the document's sublinear
    TF-IDF value, with norm making the vector of those values length 1 (padding weighs 0)."""
    size = len(idf)
    rows = torch.arange(len(ids)).unsqueeze(1).expand_as(ids)
    pairs, where, tf = torch.unique(rows * size + ids, return_inverse=True, return_counts=True)
    value = (1 + tf.float().log()) * idf[pairs % size]  # one per distinct (document, id)
    norm = torch.zeros(len(ids)).index_add_(0, pairs // size, value**2).sqrt().clamp_min(1e-12)
    return value[where] / tf[where] / norm.unsqueeze(1)


class TextBatches(TensorBatches):
    """Padded ids, lengths and labels; each batch is cut to its longest document. With `idf`,
    a batch is `((ids, weights), labels)`: a document's weights (see bag_weights) depend on it
    alone, so they are computed once here, not for every batch of every epoch."""

    def __init__(self, *tensors: torch.Tensor, idf: torch.Tensor | None = None) -> None:
        super().__init__(*tensors)
        ids = tensors[0]
        self.weights = (
            None if idf is None else torch.cat([bag_weights(part, idf) for part in ids.split(4096)])
        )

    def __getitem__(self, idx: torch.Tensor) -> tuple:
        ids, lengths, labels = self.tensors
        width = max(int(lengths[idx].max()), 1)
        if self.weights is None:
            return ids[idx, :width], labels[idx]
        return (ids[idx, :width], self.weights[idx, :width]), labels[idx]


class TextDataModule(InMemoryDataModule):
    """Base of the text DataModules: subclasses return raw texts and labels from `load_corpus`.

    When the corpus has no test split (or no val split), it is carved from the training texts,
    stratified by label and seeded.
    """

    def __init__(
        self,
        min_freq: int = 2,
        max_vocab_size: int = 20000,
        ngrams: int = 2,
        bigram_buckets: int = 50000,
        max_length: int = 256,
        weighting: str = "none",  # the configs' is tfidf; none reads checkpoints made before it
        bigram_weight: float = 0.5,
        **loader,
    ) -> None:
        super().__init__(**loader)
        if ngrams not in (1, 2):
            raise ConfigError(
                f"data.ngrams must be 1 (words) or 2 (words + bigrams), got {ngrams}."
            )
        if max_length <= 0 or min_freq <= 0 or max_vocab_size < 3 or bigram_buckets <= 0:
            raise ConfigError(
                "data.max_length, data.min_freq and data.bigram_buckets must be positive and "
                "data.max_vocab_size at least 3."
            )
        if weighting not in WEIGHTINGS:
            raise ConfigError(
                f"data.weighting must be tfidf (TF-IDF weighted sum of the embeddings) or none "
                f"(their mean), got {weighting!r}."
            )
        if not (isinstance(bigram_weight, (int, float)) and bigram_weight >= 0):
            raise ConfigError(f"data.bigram_weight must be a number >= 0, got {bigram_weight!r}.")
        self.min_freq, self.max_vocab_size = min_freq, max_vocab_size
        self.ngrams, self.bigram_buckets, self.max_length = ngrams, bigram_buckets, max_length
        self.weighting, self.bigram_weight = weighting, float(bigram_weight)
        self.vocab: Vocabulary | None = None
        self.idf: torch.Tensor | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.fitted.get("class_names", []))

    def load_corpus(self) -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
        """Return ({split: (texts, labels)}, class_names); "train" is required."""
        raise NotImplementedError

    def split_texts(self) -> dict[str, tuple[list[str], list[int]]]:
        """{split: (texts, label ids)}: the documents of each split before tokenizing, exactly
        the split the model trains and is tested on (for baselines, inspection)."""
        corpus, class_names = self.load_corpus()
        corpus = self._carve_missing_splits(corpus, self.corpus_hashes(corpus, class_names))
        if "class_names" in self.fitted:  # the checkpoint's classes, in its order
            return relabel(corpus, class_names, self.fitted["class_names"])
        self.fitted["class_names"] = list(class_names)
        return corpus

    def load_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        corpus = self.split_texts()
        tokens = {name: [tokenize(t) for t in texts] for name, (texts, _) in corpus.items()}
        if not any(tokens["train"]):
            raise DataError(
                f"no text of the training split of {type(self).__name__} has a word (letters "
                "or digits); check which column or files hold the text."
            )
        if "vocab" in self.fitted:
            self.vocab = Vocabulary(self.fitted["vocab"])
        else:
            self.vocab = Vocabulary.build(tokens["train"], self.min_freq, self.max_vocab_size)
            self.fitted["vocab"] = self.vocab.itos[2:]
        splits = {
            name: self._to_tensors(tokens[name], labels) for name, (_, labels) in corpus.items()
        }
        self.report["documents_without_words"] = sum(not d for t in tokens.values() for d in t)
        if self.weighting == "tfidf":
            self.idf = self._idf(splits["train"][0])
        return splits

    def _idf(self, train_ids: torch.Tensor) -> torch.Tensor:
        """scikit-learn's smooth idf, ln((1 + n) / (1 + df)) + 1, from the training split's
        document frequencies (kept in `fitted` as the ids that occur and their counts); bigram
        ids weighted `bigram_weight`, padding 0."""
        size = self._table_size()
        if "document_frequency" not in self.fitted:
            df = document_frequencies(train_ids, size)
            df[0] = 0  # padding
            seen = df.nonzero().squeeze(1)
            self.fitted["document_frequency"] = {
                "documents": len(train_ids),
                "ids": seen.tolist(),
                "counts": df[seen].tolist(),
            }
        stored = self.fitted["document_frequency"]
        df = torch.zeros(size)
        df[torch.tensor(stored["ids"], dtype=torch.long)] = torch.tensor(
            stored["counts"], dtype=torch.float
        )
        idf = torch.log((1.0 + stored["documents"]) / (1.0 + df)) + 1.0
        idf[len(self.vocab) :] *= self.bigram_weight
        idf[0] = 0.0
        return idf

    def corpus_hashes(self, corpus: dict, class_names: list[str]) -> dict[str, torch.Tensor]:
        """{split of the corpus: a hash of each document (its text and label name)} for the
        split record (split_record.py)."""
        return {
            name: text_keys(texts, [class_names[y] for y in labels])
            for name, (texts, labels) in corpus.items()
        }

    def _carve_missing_splits(self, corpus: dict, hashes: dict[str, torch.Tensor]) -> dict:
        """The corpus with val / test carved from its training texts where it has none (and
        the splits recorded, with each document's hash from `hashes`)."""
        texts, labels = corpus["train"]
        val_frac = 0.0 if "val" in corpus else self.val_fraction
        test_frac = 0.0 if "test" in corpus else self.test_fraction
        idx = self.carve_indices(len(labels), val_frac, test_frac, stratify=labels)
        out, keys = dict(corpus), dict(hashes)
        for name, ids in idx.items():
            if name == "train" or name not in corpus:
                out[name] = ([texts[i] for i in ids], [labels[i] for i in ids])
                keys[name] = hashes["train"][ids]
        self.record_splits(keys)
        return out

    def _to_tensors(self, docs: list[list[str]], labels: list[int]) -> tuple[torch.Tensor, ...]:
        bad = [lab for lab in labels if not 0 <= lab < len(self.class_names)]
        if bad:
            raise DataError(f"label {bad[0]} is outside the {len(self.class_names)} classes.")
        encoded = [
            encode(d, self.vocab, self.ngrams, self.bigram_buckets, self.max_length) for d in docs
        ]
        width = max((len(e) for e in encoded), default=1) or 1
        # padded rows in one tensor() call: no per-document copies
        rows = [e + [0] * (width - len(e)) for e in encoded]
        ids = (
            torch.tensor(rows, dtype=torch.long)
            if rows
            else torch.zeros(0, width, dtype=torch.long)
        )
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        return ids, lengths, torch.tensor(labels, dtype=torch.long)

    def make_dataset(self, split: str) -> TextBatches:
        return TextBatches(*self.splits[split], idf=self.idf)

    @property
    def dims(self) -> dict:
        self.setup()
        return {"vocab_size": self._table_size(), "num_classes": len(self.class_names)}

    def _table_size(self) -> int:
        """Rows of the embedding table: the vocabulary, then the bigram buckets."""
        return len(self.vocab) + (self.bigram_buckets if self.ngrams >= 2 else 0)


class SyntheticTextDataModule(TextDataModule):
    """A generated sentiment corpus (synthetic, not real text): see synthetic_text.py."""

    config, unit = "synthetic_text", "reviews"

    def __init__(self, n_samples: int = 6000, **kwargs) -> None:
        super().__init__(**kwargs)
        if n_samples < 10:
            raise ConfigError(f"data.n_samples must be at least 10, got {n_samples}.")
        self.n_samples = n_samples

    def source(self) -> dict:
        """Generated from the seed (recorded beside it) and the number of reviews."""
        return {"dataset": "synthetic_text (generated)", "n_samples": self.n_samples}

    def load_corpus(self):
        from trainkit.data.synthetic_text import generate_reviews

        texts, labels = generate_reviews(self.n_samples, self.seed)
        return {"train": (texts, labels)}, ["negative", "positive"]
