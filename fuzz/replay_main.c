/* twin fuzz: the plain replay program. Built with any compiler (no fuzzing engine), it runs
 * a target's LLVMFuzzerTestOneInput over files and folders (every regular file in them, in
 * name order), as ctest does over corpus/TARGET/ and corpus/regressions/TARGET/:
 *     fuzz_simulator corpus/simulator corpus/regressions/simulator
 * It names each file before running it, so a crash (an abort: the target's failure) is
 * pinned to its input, and ends with a count. Exit 0: every input ran and passed. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_INPUT_SIZE_MAX (16u * 1024u * 1024u)
#define REPLAY_PATH_SIZE 4096u
#define REPLAY_NAMES_MAX 100000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long inputs_run;
static unsigned long inputs_rejected;

static int run_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    uint8_t *data = malloc(REPLAY_INPUT_SIZE_MAX);
    if (data == NULL) {
        fclose(file);
        fprintf(stderr, "replay: out of memory\n");
        return 1;
    }
    size_t size = fread(data, 1, REPLAY_INPUT_SIZE_MAX, file);
    bool too_big = size == REPLAY_INPUT_SIZE_MAX && fgetc(file) != EOF;
    fclose(file);
    if (too_big) {
        free(data);
        fprintf(stderr, "replay: %s is larger than %u bytes\n", path, REPLAY_INPUT_SIZE_MAX);
        return 1;
    }
    printf("replay: %s (%zu bytes)\n", path, size);
    fflush(stdout);
    /* A copy of exactly size bytes, so that ASan sees a read past the end. */
    uint8_t *exact = malloc(size == 0 ? 1 : size);
    if (exact == NULL) {
        free(data);
        return 1;
    }
    memcpy(exact, data, size);
    free(data);
    int rc = LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    inputs_run++;
    if (rc == -1) inputs_rejected++;
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "replay: cannot open folder %s: %s\n", path, strerror(errno));
        return 1;
    }
    char **names = malloc(REPLAY_NAMES_MAX * sizeof(*names));
    size_t count = 0;
    for (struct dirent *e = readdir(dir); e != NULL && names != NULL; e = readdir(dir)) {
        if (e->d_name[0] == '.' || count == REPLAY_NAMES_MAX) continue;
        names[count++] = strdup(e->d_name);
    }
    closedir(dir);
    if (names == NULL) return 1;
    qsort(names, count, sizeof(*names), compare_names);
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        char child[REPLAY_PATH_SIZE];
        snprintf(child, sizeof(child), "%s/%s", path, names[i]);
        if (stat(child, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            failed |= run_path(child);
        }
        free(names[i]);
    }
    free(names);
    return failed;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: %s FILE|FOLDER ...   runs the fuzz target over each input (a crash is "
                "its failure; environment as for the fuzzing engines: TWIN_PLANT, TWIN_FUZZ_WORKLOAD)\n",
                argv[0]);
        return argc < 2 ? 2 : 0;
    }
    setenv("TWIN_FUZZ_VERBOSE", "1", 0);
    LLVMFuzzerInitialize(&argc, &argv);
    int failed = 0;
    for (int i = 1; i < argc; i++) failed |= run_path(argv[i]);
    printf("replay: %lu inputs run, %lu rejected as not meaningful, %s\n", inputs_run, inputs_rejected,
           failed ? "some could not be read" : "no failure");
    return failed ? 1 : 0;
}
