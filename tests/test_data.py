"""DataModules own batching: deterministic splits, whole-batch loading, text encoding."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from trainkit.data.base import BatchIndexSampler
from trainkit.data.digits import DigitsDataModule
from trainkit.data.synthetic_text import generate_reviews
from trainkit.data.tabular import DiabetesDataModule
from trainkit.data.text import TextDataModule, Vocabulary, bag_weights, encode, tokenize


def test_digits_split_is_deterministic_stratified_and_disjoint():
    a, b = DigitsDataModule(seed=3), DigitsDataModule(seed=3)
    a.setup(), b.setup()
    sizes = a.split_sizes()
    assert sum(sizes.values()) == 1797 and sizes["val"] == sizes["test"] == 270
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
    counts = Counter(a.splits["test"][1].tolist())
    assert min(counts.values()) >= 26 and max(counts.values()) <= 28  # ~27 of each digit
    train = {tuple(x.flatten().tolist()) for x in a.splits["train"][0]}
    assert not any(tuple(x.flatten().tolist()) in train for x in a.splits["test"][0][:50])
    other = DigitsDataModule(seed=4)
    other.setup()
    assert not torch.equal(other.splits["test"][1], a.splits["test"][1])


def test_loader_batches_and_last_partial_batch():
    dm = DigitsDataModule(batch_size=100)
    loader = dm.train_dataloader()
    sizes = [len(y) for _, y in loader]
    assert len(loader) == len(sizes) == 13 and sizes[-1] == 1257 - 1200
    assert dm.dims == {"input_shape": [1, 8, 8], "num_classes": 10}
    dm.drop_last = True
    assert [len(y) for _, y in dm.train_dataloader()] == [100] * 12


def test_shuffle_order_depends_only_on_seed_and_epoch():
    s = BatchIndexSampler(50, 8, shuffle=True, drop_last=False, seed=1)
    first = [b.tolist() for b in s]
    s.set_epoch(1)
    second = [b.tolist() for b in s]
    s.set_epoch(0)
    assert [b.tolist() for b in s] == first != second
    assert sorted(i for b in first for i in b) == list(range(50))


def test_distributed_shards_are_disjoint_and_cover_the_data():
    shards = []
    for rank in range(3):
        s = BatchIndexSampler(10, 2, shuffle=True, drop_last=False, seed=0)
        s.set_distributed(rank, 3)
        shards.append([i for b in s for i in b.tolist()])
    assert [len(x) for x in shards] == [4, 4, 4]  # ceil(10 / 3) each, padded by wrapping
    assert set().union(*map(set, shards)) == set(range(10))


def test_diabetes_is_standardised_on_train_only_and_reports_original_units():
    dm = DiabetesDataModule(seed=0)
    dm.setup()
    x_train = dm.splits["train"][0]
    assert torch.allclose(x_train.mean(0), torch.zeros(10), atol=1e-5)
    assert not torch.allclose(dm.splits["test"][0].mean(0), torch.zeros(10), atol=1e-3)
    assert 100 < dm.dims["target_mean"] < 200 and dm.dims["in_features"] == 10


def test_tokenizer_cleans_html_punctuation_and_case():
    assert tokenize("Clichés_galore, ÜBER-cool") == ["clichés", "galore", "über", "cool"]
    assert tokenize("Great film!<br /><br />I didn't LOVE it, 10/10.") == [
        "great",
        "film",
        "i",
        "didn't",
        "love",
        "it",
        "10",
        "10",
    ]


def test_vocabulary_order_min_freq_and_max_size():
    v = Vocabulary.build([["b", "a", "b"], ["c", "b", "a"], ["d"]], min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "b", "a"]
    assert v.lookup("d") == 1
    assert len(Vocabulary.build([["a", "b", "c"]], max_size=4)) == 4


def test_bigrams_are_hashed_after_the_vocabulary_and_interleaved():
    v = Vocabulary(["not", "good"])
    ids = encode(["not", "good"], v, ngrams=2, buckets=100, max_length=10)
    assert ids[:2] == [2, 3] and len(ids) == 3 and 4 <= ids[2] < 104
    assert encode(["not", "good"], v, ngrams=2, buckets=100, max_length=10) == ids
    assert encode(["good", "not"], v, ngrams=2, buckets=100, max_length=10)[2] != ids[2]
    assert encode(["not", "good"], v, ngrams=1, buckets=100, max_length=10) == [2, 3]


class TinyCorpus(TextDataModule):
    def load_corpus(self):
        train = (["good film", "bad film", "good plot", "bad plot"], [1, 0, 1, 0])
        test = (["unseenword film", "good"], [1, 1])
        return {"train": train, "val": train, "test": test}, ["neg", "pos"]


def test_vocabulary_comes_from_the_training_split_only():
    dm = TinyCorpus(min_freq=1, ngrams=1, batch_size=2)
    dm.setup()
    assert "unseenword" not in dm.vocab.stoi
    ids = dm.splits["test"][0]
    assert ids[0, 0].item() == 1  # <unk>
    x, y = next(iter(dm.test_dataloader()))
    assert x.dtype == torch.long and x.shape == (2, 2) and y.tolist() == [1, 1]
    assert dm.dims == {"vocab_size": len(dm.vocab) + 0, "num_classes": 2}


def test_tfidf_weights_are_scikit_learns_and_come_from_the_training_split():
    from sklearn.feature_extraction.text import TfidfVectorizer

    dm = TinyCorpus(min_freq=1, ngrams=1, batch_size=2, weighting="tfidf")
    dm.setup()
    (ids, weights), y = next(iter(dm.loader("val")))  # "good film", "bad film"
    words = dm.vocab.itos[2:]
    train_texts = ["good film", "bad film", "good plot", "bad plot"]
    vectorizer = TfidfVectorizer(
        sublinear_tf=True, vocabulary=words, tokenizer=tokenize, token_pattern=None
    )
    expected = vectorizer.fit(train_texts).transform(["good film", "bad film"]).toarray()
    got = torch.zeros(2, len(dm.vocab)).scatter_add_(1, ids, weights)[:, 2:]
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float32), atol=1e-6)
    assert dm.fitted["document_frequency"]["documents"] == 4
    # a checkpoint's document frequencies are used, not the new training split's
    other = TinyCorpus(min_freq=1, ngrams=1, weighting="tfidf", seed=3)
    other.load_state_dict(
        {"fitted": {**dm.fitted, "document_frequency": {"documents": 9, "ids": [2], "counts": [9]}}}
    )
    other.setup()
    assert other.idf[2] == 1.0 and other.idf[3] == pytest.approx(math.log(10) + 1)


def test_bag_weights_repeats_bigrams_and_padding():
    idf = torch.tensor([0.0, 1.0, 2.0, 1.0, 0.5])  # id 4 a bigram at bigram_weight 0.5
    ids = torch.tensor([[2, 2, 3, 4, 0], [0, 0, 0, 0, 0]])
    w = bag_weights(ids, idf)
    value = {2: (1 + math.log(2)) * 2.0, 3: 1.0, 4: 0.5}  # sublinear tf x idf
    norm = math.sqrt(sum(v * v for v in value.values()))
    expected = [value[2] / 2 / norm, value[2] / 2 / norm, 1.0 / norm, 0.5 / norm, 0.0]
    assert torch.allclose(w[0], torch.tensor(expected)) and w[1].abs().sum() == 0


def test_synthetic_corpus_is_deterministic_balanced_and_not_one_keyword():
    texts, labels = generate_reviews(2000, seed=0)
    assert (texts, labels) == generate_reviews(2000, seed=0)
    assert generate_reviews(50, seed=1)[0] != texts[:50]
    assert sum(labels) == 1000
    # the best single word (present -> predict its majority label) stays far from solving it
    docs = [set(tokenize(t)) for t in texts]
    vocab = set().union(*docs)
    best = 0.0
    for word in vocab:
        pos = sum(1 for d, y in zip(docs, labels, strict=True) if word in d and y == 1)
        neg = sum(1 for d, y in zip(docs, labels, strict=True) if word in d and y == 0)
        rest_pos = 1000 - pos
        rest_neg = 1000 - neg
        correct = max(pos, neg) + max(rest_pos, rest_neg)
        best = max(best, correct / 2000)
    assert best < 0.7
