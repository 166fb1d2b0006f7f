#include <openslide.h>
int main() { return openslide_get_version() != nullptr ? 0 : 1; }
