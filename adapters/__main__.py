"""`python -m adapters`: list the backend adapters the harness can find, with the stages each supports."""

from adapters.registry import ENTRY_POINT_GROUP, available, capabilities

if __name__ == "__main__":
    for name, target in available().items():
        print(f"{name:12s} {target:40s} {capabilities(name)}")
    print(f"(third-party adapters register under the entry point group '{ENTRY_POINT_GROUP}')")
