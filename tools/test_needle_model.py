#!/usr/bin/env python3
"""Tests of the needle model's tooling and of the committed models/needle (issue E6).

- The training data and tokenizer self-test of tools/train_needle_model.py (seconds on the CPU).
- models/needle's tokenizer.json and lcllm_eval.json are exactly what the tools build (nobody edited one side).
- lcllm_eval.json schema errors are caught.
- The committed model retrieves needles at 1k tokens in transformers (CPU) and, given an lcllm binary as the
  first argument, through `lcllm run` (the engine's own tokenizer, CPU backend).

Run: python3 tools/test_needle_model.py [path/to/lcllm]   (CTest: test_needle_tools). Exits 77 (skipped) when the
Python package `tokenizers` is missing; parts that need torch/transformers are skipped without them.
"""
import importlib.util
import json
import os
import random
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODEL = os.path.join(ROOT, "models", "needle")
sys.path.insert(0, HERE)
LCLLM = None

HAVE_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "numpy"))


class ContractTest(unittest.TestCase):
    def test_shipped_contract_matches_tools(self):
        import needle_contract
        with open(os.path.join(MODEL, "lcllm_eval.json")) as f:
            self.assertEqual(json.load(f), needle_contract.CONTRACT)

    def test_schema_errors_are_named(self):
        import needle_contract
        bad = dict(needle_contract.CONTRACT, keys=["a"] * 10)
        with self.assertRaisesRegex(ValueError, "keys needs at least 100"):
            needle_contract.check_contract(bad)
        bad = dict(needle_contract.CONTRACT, needle="The code is {value}.")
        with self.assertRaisesRegex(ValueError, r"needle lacks \{key\}"):
            needle_contract.check_contract(bad)
        with self.assertRaisesRegex(ValueError, "version"):
            needle_contract.check_contract(dict(needle_contract.CONTRACT, version=2))

    def test_shipped_tokenizer_is_reproducible(self):
        import needle_tokenizer
        built = json.loads(needle_tokenizer.build_tokenizer().to_str())
        with open(os.path.join(MODEL, "tokenizer.json")) as f:
            shipped = json.load(f)
        self.assertEqual(built["model"]["vocab"], shipped["model"]["vocab"])
        self.assertEqual(built["model"]["merges"], shipped["model"]["merges"])

    def test_answer_extraction(self):
        import needle_contract
        self.assertEqual(needle_contract.extract_answer(" 123456. The secret"), "123456")
        self.assertEqual(needle_contract.extract_answer(" 1, 2\nmore"), "1, 2")


def niah_prompts(n, length):
    from tokenizers import Tokenizer
    import needle_contract
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    rng = random.Random(11)
    return [needle_contract.niah_single_prompt(rng, tok, length, depth) for depth in
            [100 * i / (n - 1) for i in range(n)]]


@unittest.skipUnless(HAVE_TORCH, "needs torch, transformers, numpy")
class TrainingSelfTest(unittest.TestCase):
    def test_self_test(self):
        import train_needle_model
        train_needle_model.self_test()


@unittest.skipUnless(HAVE_TORCH, "needs torch, transformers, numpy")
class TransformersNiahTest(unittest.TestCase):
    def test_finds_needles_at_1k(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import needle_contract
        tok = AutoTokenizer.from_pretrained(MODEL)
        model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
        right = 0
        prompts = niah_prompts(5, 1024)
        for prompt, answer in prompts:
            ids = torch.tensor([tok(prompt).input_ids])
            out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=2)
            right += needle_contract.extract_answer(tok.decode(out[0, ids.shape[1]:])) == answer
        self.assertEqual(right, len(prompts))


class LcllmNiahTest(unittest.TestCase):
    def test_finds_needles_at_1k(self):
        if not LCLLM:
            self.skipTest("no lcllm binary given")
        import needle_contract
        prompts = niah_prompts(3, 1024)
        for prompt, answer in prompts:
            res = subprocess.run([LCLLM, "run", MODEL, "--prompt", prompt, "-n", "6", "--temperature", "0",
                                  "-q", "--device", "cpu", "-c", "2048"], capture_output=True, text=True)
            self.assertEqual(res.returncode, 0, res.stderr[-1000:])
            self.assertEqual(needle_contract.extract_answer(res.stdout), answer, res.stdout)


if __name__ == "__main__":
    if importlib.util.find_spec("tokenizers") is None:
        print("test_needle_model: skipped (the Python package tokenizers is not installed)")
        sys.exit(77)
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        LCLLM = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
