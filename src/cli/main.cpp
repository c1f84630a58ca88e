// placeholder: the CLI is written once the engine compiles
int main() { return 0; }
