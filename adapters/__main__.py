"""`python -m adapters`: list the backend adapters the harness can find."""

from adapters.registry import ENTRY_POINT_GROUP, available

if __name__ == "__main__":
    for name, target in available().items():
        print(f"{name:12s} {target}")
    print(f"(third-party adapters register under the entry point group '{ENTRY_POINT_GROUP}')")
