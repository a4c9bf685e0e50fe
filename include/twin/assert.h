/* twin: assertions, on in every build. */
#ifndef TWIN_ASSERT_H
#define TWIN_ASSERT_H

#include <twin/os.h>

#define TW_ASSERT(condition)                                                                  \
    do {                                                                                      \
        if (__builtin_expect(!(condition), 0)) tw_panic(__FILE__, __LINE__, #condition);     \
    } while (0)

#define TW_ASSERT_MSG(condition, message)                                                     \
    do {                                                                                      \
        if (__builtin_expect(!(condition), 0)) tw_panic(__FILE__, __LINE__, (message));      \
    } while (0)

#endif
