"""Send N concurrent compare requests to a running app and check every one is answered.

python app.py &   # then
python scripts/load_test.py --url http://127.0.0.1:7860 --requests 10
"""

import argparse
import time

from gradio_client import Client

from mcm_demo import DEFAULT_PROMPT


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args()
    client = Client(args.url, verbose=False)
    t0 = time.perf_counter()
    jobs = [
        client.submit(
            prompt=DEFAULT_PROMPT,
            teacher="embedded",
            variant="webvid",
            steps=args.steps,
            seed=i,
            randomize=False,
            frames=8,
            fps=8,
            left="lcm",
            right="mcm-webvid",
            teacher_steps=25,
            guidance=5.0,
            api_name="/compare",
        )
        for i in range(args.requests)
    ]
    answered = 0
    for i, job in enumerate(jobs):
        result = job.result(timeout=900)
        video = result[5].get("video") if isinstance(result[5], dict) else result[5]
        answered += bool(video)
        print(
            f"request {i}: {'video' if video else 'NO VIDEO'} at "
            f"{time.perf_counter() - t0:.1f}s; {result[7][:80]}"
        )
    after = client.predict(
        prompt="",
        teacher="embedded",
        variant="webvid",
        steps=4,
        seed=0,
        randomize=False,
        frames=8,
        fps=8,
        left="lcm",
        right="mcm-webvid",
        teacher_steps=25,
        guidance=5.0,
        api_name="/compare",
    )
    print(
        f"{answered}/{args.requests} answered in {time.perf_counter() - t0:.1f}s; "
        f"the server still answers (an empty prompt next: {after[3][:60]!r})"
    )


if __name__ == "__main__":
    main()
