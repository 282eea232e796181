"""Synthetic datasets for the learning tests, written as CSV with schemas."""
import csv
import json

import numpy as np

WORDS = ["good", "bad", "great", "awful", "ok", "meh", "fine", "poor"]


def write_dataset(path, n, kind, seed, bad_lines=(), noise_words=0):
    """Rows of id, x1, x2, colour, text and a target y of the given model
    kind; `bad_lines` are 1-based record numbers replaced by malformed lines;
    `noise_words` adds six uninformative words per row drawn from that many."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, max(noise_words, 1), size=(n, 6))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "x1", "x2", "colour", "text", "y"])
        for i in range(n):
            if i + 1 in bad_lines:
                handle.write("this,line,is,broken\n")
                continue
            x1, x2 = rng.normal(), rng.normal()
            colour = ["red", "green", "blue"][int(rng.integers(0, 3))]
            words = list(rng.choice(WORDS, size=4))
            z = 1.5 * x1 - x2 + (0.8 if colour == "red" else -0.3) + 0.7 * words.count("good") - 0.7 * words.count("bad")
            if kind == "BINARY":
                y = str(int(rng.random() < 1 / (1 + np.exp(-z))))
            elif kind == "REGRESSION":
                y = f"{3 * z + rng.normal() * 0.5 + 10:.5f}"
            else:
                scores = np.array([z, -z, 0.5 * x2 + (words.count("ok") - 0.5)])
                p = np.exp(scores - scores.max())
                y = ["alpha", "beta", "gamma"][int(rng.choice(3, p=p / p.sum()))]
            text = " ".join(words + ([f"w{k}" for k in noise[i]] if noise_words else []))
            writer.writerow([f"r{i}", "" if i % 40 == 0 else f"{x1:.5f}", f"{x2:.5f}", colour, text, y])


def schema(kind):
    target = {"BINARY": "BINARY", "REGRESSION": "NUMERIC", "MULTICLASS": "CATEGORICAL"}[kind]
    return json.dumps({
        "version": "1.0", "rowId": "id", "targetAttributeName": "y", "dataFormat": "CSV",
        "dataFileContainsHeader": True,
        "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                       {"attributeName": "x1", "attributeType": "NUMERIC"},
                       {"attributeName": "x2", "attributeType": "NUMERIC"},
                       {"attributeName": "colour", "attributeType": "CATEGORICAL"},
                       {"attributeName": "text", "attributeType": "TEXT"},
                       {"attributeName": "y", "attributeType": target}]})
