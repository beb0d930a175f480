// /signup – create an account
import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { getCurrentUser } from "@/lib/auth/current-user";
import { signUp } from "../actions";
import { AuthForm } from "../auth-form";

export const metadata: Metadata = { title: "Create an account · wavault" };

export default async function SignupPage() {
  if ((await getCurrentUser()).state === "signed_in") redirect("/dashboard");
  return (
    <main className="narrow">
      <h1>Create an account</h1>
      <AuthForm mode="signup" action={signUp} />
    </main>
  );
}
