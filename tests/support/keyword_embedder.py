"""A stand-in embedding model for tests of ``clusters.featurizer``: a text's vector counts
topic words, so paraphrases of one topic land close together (what a real model does with
meaning) while their characters differ."""

from __future__ import annotations

from spanwatch.pipeline.clusters.prompts import embedding_fingerprint

TOPICS = (
    ("card", "arrive", "arrived", "delivery", "post"),
    ("password", "login", "log in", "sign in", "locked"),
    ("refund", "money back", "return", "退款", "退货"),
)


def fingerprint(text: str) -> int:
    t = text.lower()
    return embedding_fingerprint([0.01 + sum(t.count(w) for w in words) for words in TOPICS])


def not_an_int(text: str) -> str:
    return text
