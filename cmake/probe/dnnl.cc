#include <dnnl.hpp>
int main() { return dnnl::version()->major > 0 ? 0 : 1; }
