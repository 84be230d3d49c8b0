// make check-layout: the source tree keeps the shape docs/architecture.md draws.
//   1. Every #include "..." between library files points down the layer order below (a folder
//      may include its own files and those of the folders it lists), never up or sideways.
//   2. No include cycle between modules (a module is x.c with its x.h, x.inc and x_internal.h):
//      a.c includes b.h while b.c includes a.h is a cycle even though no header includes itself.
//   3. No function in the library is longer than MAX_FUNCTION_LINES lines (signature to closing
//      brace), and the training loop (train/loop/train_loop.c's ct_train_run) no longer than
//      MAX_LOOP_LINES.
//   4. Every allocation goes through ct_alloc (core/alloc.h: counted, aligned, fatal with the size
//      when memory runs out): no malloc, calloc, realloc, strdup or strndup but in core/alloc.c.
//   5. The ct_ prefix marks public names: no static function in a source file carries it.
// Usage: check_layout FILE...   (the Makefile passes every library source and header)
// Prints one line per problem, "file:line: what", and exits 1 if there was any.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUNCTION_LINES 120
#define MAX_LOOP_LINES 80
#define LOOP_FILE "train/loop/train_loop.c"
#define LOOP_FUNCTION "ct_train_run"

// The layer order, lowest first. A file in folder `folder` may include headers of the folders in
// `may_include` (and of its own folder). The longest matching folder prefix decides.
typedef struct {
    const char *folder;
    const char *may_include;
} Layer;

static const Layer LAYERS[] = {
    {"core", ""},
    {"kernels", "core"},
    {"optim", "core kernels"},
    {"checkpoints", "core"},
    {"data/input", "core"},
    {"data/tokenizer", "core data/input"},
    {"data/examples", "core data/input data/tokenizer"},
    {"data/shard", "core data/input data/tokenizer data/examples"},
    {"data/loader", "core data/input data/tokenizer data/examples data/shard"},
    // The network: kernels and their math, no files, no run config, no MPI, no tokenizer
    // (generation works on token ids; text and stop tokens are its callers').
    {"train/model", "core kernels optim"},
    {"train/dist", "core kernels optim train/model"},
    // Our model onto files: ctrain checkpoints, HF, PEFT, GGUF (the bytes are in checkpoints/).
    {"train/interop", "core kernels optim checkpoints data train/model"},
    {"train/objectives", "core kernels optim checkpoints data train/model train/dist train/interop"},
    {"train/loop", "core kernels optim checkpoints data train/model train/dist train/interop train/objectives"},
    {"train/cli", "core kernels optim checkpoints data train"},
};
#define N_LAYERS (sizeof LAYERS / sizeof LAYERS[0])

static int starts_with_folder(const char *path, const char *folder) {
    size_t n = strlen(folder);
    return strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static const Layer *layer_of(const char *path) {
    const Layer *best = NULL;
    for (size_t i = 0; i < N_LAYERS; i++)
        if (starts_with_folder(path, LAYERS[i].folder) && (!best || strlen(LAYERS[i].folder) > strlen(best->folder)))
            best = &LAYERS[i];
    return best;
}

static int may_include(const Layer *from, const char *header) {
    if (starts_with_folder(header, from->folder)) return 1;
    char list[512];
    snprintf(list, sizeof list, "%s", from->may_include);
    for (char *save = NULL, *tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (starts_with_folder(header, tok)) return 1;
    return 0;
}

// ---- modules and their include graph ----
enum { MAX_MODULES = 4096, MAX_EDGES = 65536 };
static char *module_names[MAX_MODULES];
static int n_modules;
typedef struct {
    int from, to, line;
    char *file;
} Edge;
static Edge edges[MAX_EDGES];
static int n_edges;

// "train/model/model.c" and "train/model/model.h" are module "train/model/model".
static int module_id(const char *path) {
    char name[1024];
    snprintf(name, sizeof name, "%s", path);
    char *dot = strrchr(name, '.');
    char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash)) *dot = '\0';
    // x_internal.h is the private header of module x (shared by x's own files only).
    size_t n = strlen(name);
    if (n > 9 && strcmp(name + n - 9, "_internal") == 0) name[n - 9] = '\0';
    for (int i = 0; i < n_modules; i++)
        if (strcmp(module_names[i], name) == 0) return i;
    if (n_modules == MAX_MODULES) {
        fprintf(stderr, "check_layout: more than %d modules\n", MAX_MODULES);
        exit(2);
    }
    module_names[n_modules] = strdup(name);
    return n_modules++;
}

static int problems;

static void read_includes(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        exit(2);
    }
    const Layer *layer = layer_of(path);
    int from = module_id(path);
    char line[4096];
    for (int lineno = 1; fgets(line, sizeof line, f); lineno++) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, "#include \"", 10) != 0) continue;
        char header[1024];
        if (sscanf(p + 10, "%1023[^\"]", header) != 1) continue;
        if (!layer_of(header)) continue;  // not a library header (a test's, an emulation's)
        if (layer && !may_include(layer, header)) {
            printf("%s:%d: includes %s, against the layer order (%s may include: %s)\n", path, lineno, header,
                   layer->folder, *layer->may_include ? layer->may_include : "only core");
            problems++;
        }
        int to = module_id(header);
        if (to != from && n_edges < MAX_EDGES)
            edges[n_edges++] = (Edge){from, to, lineno, strdup(path)};
    }
    fclose(f);
}

// Depth-first search; a back edge closes a cycle, printed as the chain of modules.
static int color[MAX_MODULES], parent_edge[MAX_MODULES];

static void report_cycle(int back_edge) {
    int to = edges[back_edge].to;
    printf("%s:%d: include cycle: %s", edges[back_edge].file, edges[back_edge].line, module_names[to]);
    int chain[MAX_MODULES], n = 0;
    for (int m = edges[back_edge].from; m != to; m = edges[parent_edge[m]].from) chain[n++] = m;
    for (int i = n - 1; i >= 0; i--) printf(" -> %s", module_names[chain[i]]);
    printf(" -> %s\n", module_names[to]);
    problems++;
}

static void visit(int m) {
    color[m] = 1;
    for (int e = 0; e < n_edges; e++) {
        if (edges[e].from != m) continue;
        int t = edges[e].to;
        if (color[t] == 0) {
            parent_edge[t] = e;
            visit(t);
        } else if (color[t] == 1) {
            report_cycle(e);
        }
    }
    color[m] = 2;
}

// ---- function lengths ----
// A definition starts at column 0 with a line holding '(' that is not a declaration, a
// preprocessor line, a comment or an initialiser, and its body ends at the next "}" in column 0.
static int is_definition_start(const char *line) {
    if (!isalpha((unsigned char)line[0]) && line[0] != '_') return 0;
    if (strncmp(line, "typedef", 7) == 0 || strchr(line, '=') || !strchr(line, '(')) return 0;
    size_t n = strlen(line);
    while (n && isspace((unsigned char)line[n - 1])) n--;
    return n && line[n - 1] != ';';
}

static void function_name(const char *line, char *out, size_t cap) {
    const char *paren = strchr(line, '(');
    const char *bounds = strstr(line, "__launch_bounds__(");  // CUDA: the name follows the bounds
    if (bounds && bounds < paren) {
        const char *close = strchr(bounds, ')');
        if (close && strchr(close, '(')) paren = strchr(close, '(');
    }
    const char *end = paren;
    while (end > line && isspace((unsigned char)end[-1])) end--;
    const char *start = end;
    while (start > line && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) start--;
    snprintf(out, cap, "%.*s", (int)(end - start), start);
}

static void check_function_lengths(const char *path) {
    size_t n = strlen(path);
    if (!(n > 2 && strcmp(path + n - 2, ".c") == 0) && !(n > 3 && strcmp(path + n - 3, ".cu") == 0) &&
        !(n > 4 && strcmp(path + n - 4, ".inc") == 0))
        return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096], name[256] = "";
    int start = 0, in_body = 0;
    for (int lineno = 1; fgets(line, sizeof line, f); lineno++) {
        if (!start && is_definition_start(line)) {
            start = lineno;
            function_name(line, name, sizeof name);
            in_body = strchr(line, '{') != NULL;
            continue;
        }
        if (!start) continue;
        if (strcmp(name, "__launch_bounds__") == 0 && strchr(line, '('))  // CUDA: the name is on the next line
            function_name(line, name, sizeof name);
        if (!in_body) {
            if (strchr(line, ';') && !strchr(line, '{')) start = 0;  // a prototype over several lines
            else if (strchr(line, '{')) in_body = 1;
            continue;
        }
        if (line[0] != '}') continue;
        int length = lineno - start + 1;
        int is_loop = strcmp(path, LOOP_FILE) == 0 && strcmp(name, LOOP_FUNCTION) == 0;
        int limit = is_loop ? MAX_LOOP_LINES : MAX_FUNCTION_LINES;
        if (length > limit) {
            printf("%s:%d: %s is %d lines long (at most %d%s)\n", path, start, name, length, limit,
                   is_loop ? " for the training loop" : "");
            problems++;
        }
        start = 0;
    }
    fclose(f);
}

// ---- allocations and names ----
static int is_source(const char *path) {
    size_t n = strlen(path);
    return (n > 2 && strcmp(path + n - 2, ".c") == 0) || (n > 3 && strcmp(path + n - 3, ".cu") == 0) ||
           (n > 4 && strcmp(path + n - 4, ".inc") == 0);
}

// The first raw allocation call in the code of `line` (comments and string literals left aside;
// *in_comment carries a block comment over lines), or NULL.
static const char *raw_allocation(const char *line, int *in_comment) {
    static const char *const calls[] = {"malloc(", "calloc(", "realloc(", "strdup(", "strndup("};
    char code[4096];
    size_t n = 0;
    for (const char *p = line; *p && n + 1 < sizeof code; p++) {
        if (*in_comment) {
            if (p[0] == '*' && p[1] == '/') *in_comment = 0, p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            *in_comment = 1;
            p++;
            continue;
        }
        if (p[0] == '/' && p[1] == '/') break;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) break;
            continue;
        }
        code[n++] = *p;
    }
    code[n] = '\0';
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        for (const char *hit = strstr(code, calls[i]); hit; hit = strstr(hit + 1, calls[i]))
            if (hit == code || (!isalnum((unsigned char)hit[-1]) && hit[-1] != '_')) return calls[i];
    return NULL;
}

static void check_allocations_and_names(const char *path) {
    if (strcmp(path, "core/alloc.c") == 0) return;  // ct_alloc itself
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096];
    int in_comment = 0;
    for (int lineno = 1; fgets(line, sizeof line, f); lineno++) {
        const char *call = raw_allocation(line, &in_comment);
        if (call) {
            printf("%s:%d: calls %.*s directly; allocate through ct_alloc (core/alloc.h)\n", path, lineno,
                   (int)strlen(call) - 1, call);
            problems++;
        }
        if (is_source(path) && strncmp(line, "static ", 7) == 0 && is_definition_start(line)) {
            char name[256];
            function_name(line, name, sizeof name);
            if (strncmp(name, "ct_", 3) == 0) {
                printf("%s:%d: static %s has the ct_ prefix of public names; drop it\n", path, lineno, name);
                problems++;
            }
        }
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: check_layout FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        read_includes(argv[i]);
        check_function_lengths(argv[i]);
        check_allocations_and_names(argv[i]);
    }
    for (int m = 0; m < n_modules; m++)
        if (color[m] == 0) visit(m);
    printf("check-layout: %d files, %d modules, %d includes: %d problem%s\n", argc - 1, n_modules, n_edges, problems,
           problems == 1 ? "" : "s");
    return problems ? 1 : 0;
}
