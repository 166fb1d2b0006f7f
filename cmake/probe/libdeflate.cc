#include <libdeflate.h>
int main() {
  libdeflate_compressor* c = libdeflate_alloc_compressor(6);
  libdeflate_free_compressor(c);
  return 0;
}
