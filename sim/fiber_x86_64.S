/* twin sim: the x86_64 (System V) fiber switch.
 *
 * void tw_fiber_switch_raw(void **from_sp, void *to_sp)
 *   Pushes the callee-saved registers (rbp rbx r12-r15) and the SSE/x87 control words,
 *   stores rsp in *from_sp, loads to_sp, and pops the same frame for the other fiber.
 *   Caller-saved registers need no saving: this is an ordinary call.
 *
 * A new fiber's stack is prepared by tw_fiber_init so that its first "return" lands in
 * tw_fiber_start_asm with r12 = the tw_fiber and r13 = the C start function. */
    .text
    .globl tw_fiber_switch_raw
    .type tw_fiber_switch_raw, @function
tw_fiber_switch_raw:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size tw_fiber_switch_raw, .-tw_fiber_switch_raw

    .globl tw_fiber_start_asm
    .type tw_fiber_start_asm, @function
tw_fiber_start_asm:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size tw_fiber_start_asm, .-tw_fiber_start_asm

    .section .note.GNU-stack,"",@progbits
