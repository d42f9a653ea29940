"""The chart: throughput and p99 latency per driver and case (matplotlib)."""


def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c["id"] for c in doc["cases"] if doc["results"].get(c["id"])]
    drivers = [d["name"] for d in doc["drivers"]
               if any(d["name"] in doc["results"].get(c, {}) for c in cases)]
    if not cases or not drivers:
        return False
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.3 * len(cases) + 3), 8.5))
    width = 0.8 / len(drivers)
    panels = (("rps", "throughput (requests/s, log)"), ("p99_us", "p99 latency (µs, log)"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for j, driver in enumerate(drivers):
            xs, heights, lo, hi = [], [], [], []
            for i, case in enumerate(cases):
                agg = doc["results"][case].get(driver)
                f = agg["figures"].get(key) if agg else None
                if not f:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                heights.append(f["median"])
                lo.append(f["median"] - f["min"])
                hi.append(f["max"] - f["median"])
            ax.bar(xs, heights, width, yerr=[lo, hi], capsize=2, label=driver)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=20, ha="right")
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.94),
               ncol=min(len(drivers), 5), fontsize="small", frameon=False)
    fig.suptitle("libscylla_shard benchmark, %s (%s mode; bars: median, whiskers: min-max)\n%s"
                 % (doc["date"], doc["settings"]["mode"], doc["machine"].get("cpu", "")),
                 fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
