"""The train-step stage of ../shared/bench/torch_lm.py --bench, alone: the same model, batch, loss, optimizer and
timing (median of 3 after one warm-up), without the prefill and decode stages that take minutes before it.

    /usr/bin/python3 bench/torch-lm-train.py [threads]      # prints one JSON line: train_step_ms, threads, peak_rss_gb
"""
import json
import os
import resource
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'bench'))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_lm as T  # noqa: E402

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
model = T.PrefixLM()
g = torch.Generator().manual_seed(0)
head, text, tail = T.make_prompt(1, g)  # drawn as torch_lm.bench draws it, so the batch below is the same
P = head.shape[1] + T.TEXT_LEN + tail.shape[1]
model.train()
B, OUT = 2, 512
headB, textB, tailB = T.make_prompt(B, g)
out = torch.randint(0, T.V_VISUAL, (B, OUT), generator=g)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)


def step():
    x = model.embed(headB, textB, torch.cat([tailB, out], dim=1))
    h = model.run(x, P)
    logits = model.lm_head(h[:, P - 1:P - 1 + OUT])
    loss = F.cross_entropy(logits.reshape(-1, T.VOCAB), out.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


ms = T.median_ms(step, 3)
print(json.dumps({"train_step_ms": round(ms, 1), "threads": threads,
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 1), "torch": torch.__version__}))
