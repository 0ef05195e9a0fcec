#!/usr/bin/env python3
"""LARP-L-long-AR (hywang66/LARP models/larp_ar.py, llama-abs-LP) in plain PyTorch, as a speed reference for vtok.

The model restated from the reference's description (not imported: its package needs torch >= 2): a Llama-style
decoder, 30 layers, width 1280, 20 heads of 64, pre-norm RMSNorm (eps 1e-5), attention with one fused wqkv
projection and no biases, SwiGLU of hidden 3584 (find_multiple(int(2*4*1280/3), 256)), learned absolute positions
abs_pe [1, 1024, 1280], a class embedding of 101 + 1 rows (the last is the null class of classifier-free guidance),
an untied head over 8,192 codes; 631,975,680 parameters. Random N(0, 0.02) weights.

Sampling as the reference's ar/generate.py (adapted from gpt-fast) does it on a CPU: a static KV cache of
find_multiple(1 + 1024, 8) positions per layer for the batch of 2 (the class, the null class), a prefill of the class
position, then one token at a time, each step attending over the whole cache under a causal mask (as the reference's
`causal_mask[:, None, input_pos]` does), guidance u + 1.25 (c - u), temperature 1, top-k 0, top-p 1, a multinomial
draw fed to both streams.

  --bench [N]      N threads (default 2). Prints progress on stderr and one JSON line last:
                   prefill_ms     the class position of both streams -> first logits
                   decode_tok_s   --tokens T (default 64) clip tokens one at a time (median of 2 runs after a
                                  warm-up of 4 tokens); a whole clip is 1,024 tokens
                   peak_rss_gb    the process's peak resident memory
  --check          KV-cache decoding reproduces a full forward pass (small model); exit 0 on agreement.
  --tokenizer [N]  LARP-L encode/decode of one 16x128x128 clip with the shared torch_larp.py's model (found in
                   $VTOK_TORCH_BENCH or ../shared/bench beside the repository), median of 5 after a warm-up.

Needs Debian's PyTorch (apt-get install python3-torch libopenblas0-pthread); run it with /usr/bin/python3. It is a
measuring stick, not a dependency of vtok.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DIM, LAYERS, HEADS, VOCAB, CLASSES, SEQ = 1280, 30, 20, 8192, 101, 1024


def find_multiple(n, k):
    return n if n % k == 0 else n + k - n % k


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, d, h, hidden):
        super().__init__()
        self.h, self.hd, self.d = h, d // h, d
        self.attention_norm = RMSNorm(d)
        self.wqkv = nn.Linear(d, 3 * d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d)
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)
        self.k_cache = self.v_cache = None

    def forward(self, x, input_pos, mask):
        B, n, d = x.shape
        q, k, v = self.wqkv(self.attention_norm(x)).split([d, d, d], dim=-1)
        q, k, v = (t.view(B, n, self.h, self.hd).transpose(1, 2) for t in (q, k, v))
        if self.k_cache is not None:                     # static cache: write this call's rows, attend over all
            self.k_cache[:, :, input_pos] = k
            self.v_cache[:, :, input_pos] = v
            k, v = self.k_cache, self.v_cache
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + self.wo((att @ v).transpose(1, 2).reshape(B, n, d))
        y = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(y)) * self.w3(y))


class LarpAr(nn.Module):
    def __init__(self, d=DIM, layers=LAYERS, heads=HEADS, vocab=VOCAB, classes=CLASSES, seq=SEQ):
        super().__init__()
        self.d, self.heads, self.classes, self.seq = d, heads, classes, seq
        hidden = find_multiple(int(2 * 4 * d / 3), 256)
        self.cls_embedding = nn.Embedding(classes + 1, d)
        self.tok_embeddings = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Block(d, heads, hidden) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.output = nn.Linear(d, vocab, bias=False)
        self.abs_pe = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def setup_caches(self, batch):
        length = find_multiple(1 + self.seq, 8)
        for b in self.layers:
            b.k_cache = torch.zeros(batch, self.heads, length, self.d // self.heads)
            b.v_cache = torch.zeros(batch, self.heads, length, self.d // self.heads)
        self.causal = torch.tril(torch.ones(length, length, dtype=torch.bool))

    def step(self, h, input_pos):
        """h: B x n embeddings at positions input_pos (through the cache) -> logits of the last position."""
        h = h + self.abs_pe[:, input_pos]
        mask = self.causal[None, None, input_pos]
        for b in self.layers:
            h = b(h, input_pos, mask)
        return self.output(self.norm(h[:, -1]))

    def full(self, idx, cls):
        """The uncached pass: [class ; tokens] -> logits of every position."""
        h = torch.cat([self.cls_embedding(cls)[:, None], self.tok_embeddings(idx)], dim=1)
        n = h.shape[1]
        h = h + self.abs_pe[:, :n]
        mask = torch.tril(torch.ones(n, n, dtype=torch.bool))[None, None]
        for b in self.layers:
            h = b(h, None, mask)
        return self.output(self.norm(h))


def generate(model, cls, tokens, cfg_scale=1.25, seed=0):
    """One guided clip's first `tokens` tokens; returns (prefill seconds, decode tokens/s)."""
    g = torch.Generator().manual_seed(seed)
    B = cls.shape[0]
    model.setup_caches(2 * B)
    with torch.no_grad():
        t0 = time.perf_counter()
        cond = torch.cat([cls, torch.full_like(cls, model.classes)])
        logits = model.step(model.cls_embedding(cond)[:, None], torch.arange(0, 1))
        prefill = time.perf_counter() - t0
        t1 = time.perf_counter()
        for i in range(tokens):
            c, u = logits.split(B)
            probs = (u + (c - u) * cfg_scale).softmax(-1)       # temperature 1, no top-k / top-p
            nxt = torch.multinomial(probs, 1, generator=g)
            if i + 1 < tokens:
                logits = model.step(model.tok_embeddings(torch.cat([nxt, nxt])), torch.tensor([1 + i]))
        return prefill, (tokens - 1) / (time.perf_counter() - t1)


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 / 1024.0


def bench(threads, tokens):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t = time.perf_counter()
    model = LarpAr().eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"LARP-L-long-AR: {params} params built in {time.perf_counter() - t:.1f} s; torch {torch.__version__}, "
          f"{threads} threads; peak RSS {peak_rss_gb():.2f} GB", file=sys.stderr, flush=True)
    cls = torch.tensor([62])
    generate(model, cls, 4)
    runs = [generate(model, cls, tokens) for _ in range(2)]
    tok_s = statistics.median([r[1] for r in runs])
    prefill_ms = statistics.median([r[0] for r in runs]) * 1000
    print(f"decode {', '.join(f'{r[1]:.2f}' for r in runs)} tok/s, prefill {prefill_ms:.0f} ms; peak RSS "
          f"{peak_rss_gb():.2f} GB", file=sys.stderr, flush=True)
    print(json.dumps({"prefill_ms": round(prefill_ms, 1), "decode_tok_s": round(tok_s, 3),
                      "clip_s_estimate": round(1024 / tok_s), "tokens": tokens, "threads": threads,
                      "params": params, "peak_rss_gb": round(peak_rss_gb(), 2), "torch": torch.__version__}))


def check():
    """KV-cache decoding gives the logits of the full pass (small model)."""
    torch.manual_seed(0)
    model = LarpAr(d=64, layers=2, heads=4, vocab=50, classes=5, seq=12).eval()
    idx, cls = torch.randint(0, 50, (1, 9)), torch.tensor([3])
    with torch.no_grad():
        full = model.full(idx, cls)
        model.setup_caches(1)
        inc = [model.step(model.cls_embedding(cls)[:, None], torch.arange(0, 1))]
        for j in range(idx.shape[1]):
            inc.append(model.step(model.tok_embeddings(idx[:, j:j + 1]), torch.tensor([1 + j])))
    err = (torch.stack(inc, 1) - full).abs().max().item()
    print(json.dumps({"kv_cache_max_abs_err": err}))
    return err < 1e-4


def tokenizer(threads):
    here = os.path.dirname(os.path.abspath(__file__))
    ref = os.environ.get("VTOK_TORCH_BENCH", os.path.join(here, "..", "..", "shared", "bench"))
    sys.path.insert(0, ref)
    import torch_larp                                            # the shared LARP-L reference (encode/decode)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_larp.LARPTokenizer(torch_larp.LARP_L).eval()
    model.set_vq_eval_deterministic(True)
    x = torch.rand(1, 3, 16, 128, 128, generator=torch.Generator().manual_seed(0))
    state = {}

    def encode():
        with torch.no_grad():
            state["ids"] = model.encode(x)["indices"]

    def decode():
        with torch.no_grad():
            model.decode_from_bottleneck(state["ids"])

    def median_ms(fn):
        fn()
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ts)

    enc, dec = median_ms(encode), median_ms(decode)
    print(json.dumps({"encode_ms": round(enc, 1), "decode_ms": round(dec, 1), "threads": threads,
                      "peak_rss_gb": round(peak_rss_gb(), 2), "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--bench", nargs="?", type=int, const=2, metavar="THREADS")
    g.add_argument("--check", action="store_true")
    g.add_argument("--tokenizer", nargs="?", type=int, const=2, metavar="THREADS")
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if check() else 1)
    if a.tokenizer:
        tokenizer(a.tokenizer)
    else:
        bench(a.bench, a.tokens)


if __name__ == "__main__":
    main()
