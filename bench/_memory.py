"""Peak resident memory of a bench process and of the worker processes it started and joined."""
import resource


def peak_memory(children_label: str = "largest finished child process") -> str:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB -> GiB
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return f"peak resident memory: this process {own:.2f} GiB, {children_label} {children:.2f} GiB"
